.PHONY: install test lint typecheck check serve calibrate evaluate bench loadtest docs

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
	comparefaces calibrate ../shared/data/lfw-dev --out app/calibrations/default.json \
		--description "Labeled Faces in the Wild, dev half (2,954 people, 7,171 photos, 250x250 JPEG)"

evaluate:
	comparefaces evaluate ../shared/data/lfw-dev --pairs ../shared/data/lfw-dev-pairs.txt --plot det.png

bench:
	python -m bench --update-benchmarks BENCHMARKS.md $(BENCH_ARGS)

loadtest:
	python -m bench.loadtest $(LOADTEST_ARGS)

docs:
	python scripts/gen_settings_docs.py
