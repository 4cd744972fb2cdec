"""`make bench`: arrival latency, claim contention, click path, queries at scale, memory.

Run as `python -m bench` from the project root; writes bench/REPORT.md and bench/report.json.
Every server binds to 127.0.0.1 and is stopped (its process group killed) before exit.
"""
