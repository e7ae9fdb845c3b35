#!/usr/bin/env bash
# What the native cluster needs on top of `make deps`: ZooKeeper's jars from Maven Central (ClickHouse 18.16's
# replication needs ZooKeeper). Refetched when the pom changes; safe to run again.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"

pom="$ROOT/infrastructure/cluster/zookeeper/pom.xml"
libs="$STATE/zookeeper/libs"
stamp="$libs/.pom.sha256"
if [ ! -f "$stamp" ] || [ "$(sha256sum "$pom" | cut -d' ' -f1)" != "$(cat "$stamp")" ]; then
  say deps "fetching ZooKeeper jars with Maven (infrastructure/cluster/zookeeper/pom.xml)"
  rm -rf "$libs"
  mvn -q -B -f "$pom" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
  sha256sum "$pom" | cut -d' ' -f1 >"$stamp"
fi
say deps "cluster ok"
