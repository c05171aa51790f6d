#!/usr/bin/env bash
# Make PostgreSQL answer on 127.0.0.1:5432 for the test suite, or say loudly that it does not.
# Order: already up -> start an installed cluster -> (as root) install Debian's postgresql, start it
# and allow trust auth from 127.0.0.1 with a database `test`.
set -u
up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
       (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if up; then exit 0; fi
echo "PostgreSQL is not answering on 127.0.0.1:5432: trying to start it"
if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start || true
  done
  sleep 2
  if up; then exit 0; fi
fi
if [ "$(id -u)" = 0 ] && ! ls /etc/postgresql >/dev/null 2>&1; then
  echo "installing Debian's postgresql"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  v=$(ls /etc/postgresql | head -n1)
  conf=/etc/postgresql/$v/main
  sed -i 's/^host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\S\+/host all all 127.0.0.1\/32 trust/' "$conf/pg_hba.conf"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start
  sleep 2
  su postgres -c "createdb test" 2>/dev/null || true
  if up; then exit 0; fi
fi
echo "!!!!!!!!!! PostgreSQL could not be started: the PostgreSQL tests will be SKIPPED !!!!!!!!!!"
exit 1
