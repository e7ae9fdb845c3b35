#!/usr/bin/env bash
# What the native cluster needs on top of `make deps`: ZooKeeper's jars from Maven Central (ClickHouse 18.16's
# replication needs ZooKeeper). Refetched when the pom changes; safe to run again.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"

maven_libs "$ROOT/infrastructure/cluster/zookeeper/pom.xml" "$STATE/zookeeper/libs" ZooKeeper
say deps "cluster ok"
