"""Reads a Prometheus text exposition on stdin with prometheus_client's own
parser (the versions of tests/requirements.txt) and prints its families as
JSON: {name: {"type": ..., "samples": [[name, labels, value], ...]}}.
A malformed exposition makes the parser raise, and this script exit non-zero.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    families = {}
    for family in text_string_to_metric_families(sys.stdin.read()):
        families[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [
                [s.name, s.labels, None if math.isinf(s.value) else s.value]
                for s in family.samples
            ],
        }
    json.dump(families, sys.stdout)


if __name__ == "__main__":
    main()
