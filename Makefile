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

calibrate:
	comparefaces calibrate ../shared/data/lfw-dev ../shared/data/asian-dev --groups prefix \
		--exclude app/calibrations/asian-dev-exclusions.txt --out app/calibrations/$(or $(COMPAREFACES_MODEL),default).json \
		--description "lfw-dev + asian-dev and each of asian-dev's nationality groups (chinese, japanese, korean: impostor pairs within the group); thresholds the strictest per key of those that can measure it; asian-dev without the photos in app/calibrations/asian-dev-exclusions.txt (comparefaces audit, reviewed)."

evaluate:
	comparefaces evaluate ../shared/data/lfw-dev ../shared/data/asian-dev --groups prefix --folds 5 \
		--exclude app/calibrations/asian-dev-exclusions.txt --pairs ../shared/data/lfw-dev-pairs.txt --plot det.png

audit:
	comparefaces audit ../shared/data/asian-dev --out audit-asian-dev

bench:
	python -m bench --update-benchmarks BENCHMARKS.md $(BENCH_ARGS)

loadtest:
	python -m bench.loadtest $(LOADTEST_ARGS)

docs:
	python scripts/gen_settings_docs.py
