"""Parses the Prometheus text exposition on stdin with prometheus_client's
own parser (Debian's python3-prometheus-client) and prints it as JSON:
{"families": {name: type}, "samples": [{"name", "labels", "value"}]}.
A malformed exposition makes the parser raise: exit status 1."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families, samples = {}, []
for fam in text_string_to_metric_families(sys.stdin.read()):
    families[fam.name] = fam.type
    for s in fam.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
json.dump({"families": families, "samples": samples}, sys.stdout)
