#!/bin/sh
# update-assets.sh re-creates the third-party files in assets/ from the npm
# registry. Versions are exact, and every tarball is checked against the
# integrity hash recorded here, so running it again gives the same bytes.
#
# Needs sh, npm (with node) and tar. Run it from anywhere:
#
#	sh internal/playground/update-assets.sh
#
# To move to another version, change it below, set its integrity to the
# value printed by `npm view <name>@<version> dist.integrity`, run the script,
# and try the page in a browser (see assets/README.md).
set -eu

# name version integrity of the npm tarball
PACKAGES='
graphiql 3.9.0 sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA==
graphql-ws 6.4.2 sha512-wxhPhhOGJo8PbGDkBYVE76sZLDrS+GkyrR4bZECSLVbo0pZZNKs0HtBh2Ip/uaUuiVUxwO9ssI9R92buQfNSqQ==
react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==
react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==
'

# source in the package -> file in assets/
FILES='
graphiql graphiql.min.js graphiql.min.js
graphiql graphiql.min.css graphiql.min.css
graphiql LICENSE graphiql.LICENSE.txt
graphql-ws umd/graphql-ws.min.js graphql-ws.min.js
graphql-ws LICENSE.md graphql-ws.LICENSE.txt
react umd/react.production.min.js react.production.min.js
react LICENSE react.LICENSE.txt
react-dom umd/react-dom.production.min.js react-dom.production.min.js
react-dom LICENSE react-dom.LICENSE.txt
'

dir=$(cd "$(dirname "$0")" && pwd)/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "$PACKAGES" | while read -r name version integrity; do
	[ -n "$name" ] || continue
	echo "fetching $name@$version" >&2
	# --ignore-scripts: npm pack of a registry spec runs nothing, but be sure.
	tarball=$(cd "$tmp" && npm pack --silent --ignore-scripts "$name@$version")
	got=$(node -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"));' "$tmp/$tarball")
	if [ "$got" != "$integrity" ]; then
		echo "$name@$version: integrity $got, want $integrity" >&2
		exit 1
	fi
	mkdir -p "$tmp/$name"
	tar -xzf "$tmp/$tarball" -C "$tmp/$name"
done

echo "$FILES" | while read -r name src dst; do
	[ -n "$name" ] || continue
	cp "$tmp/$name/package/$src" "$dir/$dst"
	chmod 0644 "$dir/$dst"
done

cd "$dir"
ls -l -- *.min.js *.min.css *.LICENSE.txt >&2
