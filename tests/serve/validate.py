"""Validates JSON texts against a JSON Schema with the `jsonschema` package (PyPI), an implementation nobody here
wrote: `validate.py SCHEMA OUTPUT...`. Prints one line per output; exits 1 if any fails to parse or validate."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    text = open(path).read()
    try:
        value = json.loads(text)
        errors = [e.message for e in validator.iter_errors(value)]
    except json.JSONDecodeError as e:
        errors = [f"not JSON: {e}"]
    if errors:
        bad += 1
        print(f"{path}: INVALID {errors}: {text!r}")
    else:
        print(f"{path}: valid {text.strip()}")
sys.exit(1 if bad else 0)
