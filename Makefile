.PHONY: install test lint typecheck check serve calibrate evaluate audit bench loadtest docs

install:
	pip install -e '.[test]'

test:
	pytest

lint:
	ruff check app bench tests scripts
	ruff format --check app bench tests scripts

typecheck:
	mypy

check: lint typecheck test

serve:
	comparefaces serve

LABELS = app/calibrations/labels/{population}.csv
GROUPS = --groups prefix --groups 'prefix+$(LABELS):sex' --groups 'prefix+$(LABELS):sex+$(LABELS):age_band'
DEV = ../shared/data/lfw-dev ../shared/data/asian-dev ../shared/data/lab-dev

calibrate:
	comparefaces calibrate $(DEV) $(GROUPS) \
		--exclude app/calibrations/asian-dev-exclusions.txt --out app/calibrations/$(or $(COMPAREFACES_MODEL),default).json \
		--description "lfw-dev + asian-dev + lab-dev; each population's prefix groups (asian-dev's nationalities, lab-dev's two lab sets) and within them the matched impostors: same sex, and same sex and age band (app/calibrations/labels); thresholds the strictest per key of those whose false accepts come from at least 10 distinct person pairs, per pair type and per apparent-age stratum; asian-dev without the photos in app/calibrations/asian-dev-exclusions.txt (comparefaces audit, reviewed)."

evaluate:
	comparefaces evaluate $(DEV) $(GROUPS) --folds 5 \
		--exclude app/calibrations/asian-dev-exclusions.txt --pairs ../shared/data/lfw-dev-pairs.txt --plot det.png

audit:
	comparefaces audit ../shared/data/asian-dev --out audit-asian-dev

bench:
	python -m bench --update-benchmarks BENCHMARKS.md $(BENCH_ARGS)

loadtest:
	python -m bench.loadtest $(LOADTEST_ARGS)

docs:
	python scripts/gen_settings_docs.py
	python scripts/gen_calibration_tables.py
