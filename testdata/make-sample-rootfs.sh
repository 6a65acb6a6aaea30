#!/usr/bin/env bash
# Writes testdata/sample-rootfs.tar: a tiny root file system with what a real
# one has (dpkg database, usrmerge links, a device, setuid and capability
# bits, numeric owners, a hard link), as `podman export` would give it.
# Needs root (devices, owners, security.* xattrs) and GNU tar.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/sample-rootfs.tar"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
cd "$tree"
mkdir -p usr/bin usr/lib usr/share/doc/hello usr/share/doc/greet etc dev tmp var/lib/dpkg/info home/user
ln -s usr/bin bin
ln -s usr/lib lib
printf '#!/bin/sh\necho "hello from chunkah"\n' > usr/bin/hello
printf '#!/bin/sh\necho "greetings"\n' > usr/bin/greet
ln usr/bin/greet usr/bin/greet-again
chmod 4755 usr/bin/greet
python3 -c "import os; os.setxattr('usr/bin/hello', 'security.capability', bytes([1,0,0,2,0x20,0,0,0] + [0]*12))"
printf 'hello is free software\n' > usr/share/doc/hello/copyright
printf 'greet is free software\n' > usr/share/doc/greet/copyright
printf 'PRETTY_NAME="chunkah sample"\nID=sample\n' > etc/os-release
printf 'sample\n' > etc/hostname
printf 'a file no package owns\n' > home/user/notes.txt
chown -R 1000:1000 home/user
chmod 1777 tmp
mknod dev/null c 1 3
chmod 666 dev/null
cat > var/lib/dpkg/status <<'STATUS'
Package: hello
Status: install ok installed
Architecture: amd64
Version: 1.0

Package: greet
Status: install ok installed
Architecture: amd64
Source: greetings (2.1)
Version: 2.1-1
STATUS
printf '/.\n/bin\n/bin/hello\n/usr/share/doc/hello\n/usr/share/doc/hello/copyright\n' > var/lib/dpkg/info/hello.list
printf '/.\n/usr/bin/greet\n/usr/bin/greet-again\n/usr/share/doc/greet\n/usr/share/doc/greet/copyright\n' > var/lib/dpkg/info/greet:amd64.list
tar --xattrs --xattrs-include='*' --numeric-owner --sort=name --mtime=@1700000000 \
    --format=posix --pax-option=delete=atime,delete=ctime -cpf "$out" .
echo "wrote $out ($(stat -c %s "$out") bytes)"
