# promtool (Debian's prometheus package, 2.42): checks the collector's
# /metrics exposition (`promtool check metrics`) and the example alert rules
# in deploy/monitoring (`promtool check rules`). The package starts no
# service here; only the promtool binary is used.
apt_install prometheus
