#!/usr/bin/env bash
# Fetch Apache Kafka (tests/kafka/pom.xml: the pinned version and an SLF4J
# binding its POM leaves out) from Maven Central once, with its
# dependencies, into build/kafka/lib/. A second run finds it there and does
# nothing. Prints the folder. Needs Java 17 and Maven
# (apt-get install default-jdk-headless maven).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${KAFKA_LIB:-$root/build/kafka/lib}
stamp=$dest/.pom-$(sha256sum "$here/pom.xml" | cut -c1-16)

if [ -e "$stamp" ]; then
        echo "$dest"
        exit 0
fi
for tool in java mvn; do
        command -v "$tool" >/dev/null || {
                echo "tests/kafka/fetch.sh: $tool not found" \
                     "(apt-get install default-jdk-headless maven)" >&2
                exit 1
        }
done
echo "tests/kafka/fetch.sh: fetching Apache Kafka into $dest" >&2
rm -rf "$dest.new"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dest.new" >&2
rm -rf "$dest"
mv "$dest.new" "$dest"
touch "$stamp"
echo "$dest"
