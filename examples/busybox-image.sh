#!/bin/sh
# Builds a small OCI image without the internet: Debian's static busybox (package
# busybox-static) as one layer, serving /www with busybox httpd on port 8080 as user www.
# Then import it into the node's image store and run examples/image.yaml:
#
#   sh examples/busybox-image.sh /tmp/busybox-oci
#   paddock image import --name paddock.example/busybox-httpd /tmp/busybox-oci
#   paddock up -f examples/image.yaml
#
# (With internet, `paddock image pull busybox` or any image a pod names works the same way.)
set -eu
out=${1:?usage: busybox-image.sh OUTPUT_DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "$busybox is missing: apt-get install busybox-static" >&2; exit 1; }
# The image has no libc: a dynamically linked busybox (Debian's package busybox) cannot run in it.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked: apt-get install busybox-static" >&2; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nwww:x:33:\n' > "$root/etc/group"
printf 'hello from an image\n' > "$root/www/index.html"
chmod 1777 "$root/tmp"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf "$work/layer.tar" bin etc www tmp

mkdir -p "$out/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
blob() { # FILE → prints "sha256:<hex> <size>", stores the blob
  d=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$out/blobs/sha256/$d"
  echo "sha256:$d $(stat -c %s "$1")"
}
set -- $(blob "$work/layer.tar"); layer=$1 layer_size=$2
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
cat > "$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"User":"www","WorkingDir":"/www","Env":["PATH=/bin"],"Entrypoint":["/bin/busybox","httpd","-f","-p","8080","-h","/www"]},"rootfs":{"type":"layers","diff_ids":["$layer"]}}
JSON
set -- $(blob "$work/config.json"); config=$1 config_size=$2
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$layer","size":$layer_size}]}
JSON
set -- $(blob "$work/manifest.json"); manifest=$1 manifest_size=$2
cat > "$out/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$manifest","size":$manifest_size,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}
JSON
echo "wrote the OCI image layout $out (manifest $manifest)"
