#!/bin/sh
# Makes the secrets of deploy/compose.yaml in this folder, random, once: an existing file
# is kept (rotate by deleting it, then restart the services that use it). The files are
# the compose secrets; git ignores them (deploy/secrets/.gitignore).
set -eu
cd "$(dirname "$0")"
chmod 700 .
# readable by the container users (compose bind-mounts the files); the folder is private
umask 022

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
make() { [ -s "$1" ] && echo "kept $1" || { cat >"$1"; echo "made $1"; }; }

pg=$(random); mq=$(random); rd=$(random); s3_key=$(random | cut -c1-20); s3_secret=$(random)
[ -s postgres-password ] && pg=$(cat postgres-password)
[ -s rabbitmq-credentials.conf ] && mq=$(sed -n 's/^default_pass = //p' rabbitmq-credentials.conf)
[ -s redis.conf ] && rd=$(sed -n 's/^requirepass //p' redis.conf)

printf '%s' "$pg" | make postgres-password
printf 'default_user = pixelmill\ndefault_pass = %s\n' "$mq" | make rabbitmq-credentials.conf
printf 'requirepass %s\n' "$rd" | make redis.conf
random | make grafana-admin-password
cat <<JSON | make seaweedfs-s3.json
{"identities": [{"name": "pixelmill",
  "credentials": [{"accessKey": "$s3_key", "secretKey": "$s3_secret"}],
  "actions": ["Read:pixelmill", "Write:pixelmill", "List:pixelmill", "Tagging:pixelmill"]}]}
JSON
s3_key=$(sed -n 's/.*"accessKey": "\([^"]*\)".*/\1/p' seaweedfs-s3.json)
s3_secret=$(sed -n 's/.*"secretKey": "\([^"]*\)".*/\1/p' seaweedfs-s3.json)
# pixelmill's own settings file (PIXELMILL_CONFIG): every secret it needs, in one place
cat <<YAML | make pixelmill.yaml
database:
  url: postgresql+psycopg://pixelmill:$pg@postgres:5432/pixelmill
broker:
  url: amqp://pixelmill:$mq@rabbitmq:5672/
cache:
  url: redis://:$rd@redis:6379/0
storage:
  s3_access_key: $s3_key
  s3_secret_key: $s3_secret
security:
  signing_key: $(random)
workspace:
  site_secret: $(random)
YAML
