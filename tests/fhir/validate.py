"""Validates FHIR R4 JSON against the official definitions, as the fhir.resources package
(models generated from the FHIR 4.0.1 StructureDefinitions) reads them: each file is one
resource or a Bundle, every nested resource is checked as its own type, and unknown fields,
wrong types and missing required elements fail. Prints one line per resource checked.

    python validate.py FILE...      (tests/tests/fhir.rs runs it; scripts/test.sh makes the venv)
Exit status 0 when every resource is valid.
"""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__

failed = 0
checked = 0


def check(resource, where):
    global failed, checked
    kind = resource.get("resourceType")
    try:
        construct_fhir_element(kind, resource)
        checked += 1
        print(f"ok {kind}/{resource.get('id', '')} ({where})")
    except Exception as e:  # pydantic's ValidationError, or an unknown resource type
        failed += 1
        print(f"INVALID {kind}/{resource.get('id', '')} ({where}): {e}")


for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        resource = json.load(f)
    check(resource, path)
    for entry in resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []:
        check(entry["resource"], f"{path} entry")

print(f"{checked} valid, {failed} invalid")
sys.exit(1 if failed or not checked else 0)
