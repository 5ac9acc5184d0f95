"""Reads the Prometheus text exposition format on stdin with the official client's
parser and prints it as JSON for tests/operations.rs: each family's name, type and
help, and each sample's name, labels and value. A line the parser refuses fails it."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {
                "name": s.name,
                "labels": s.labels,
                # JSON has no infinities; no figure of ours is one, but say so if it were.
                "value": s.value if math.isfinite(s.value) else str(s.value),
            }
            for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
