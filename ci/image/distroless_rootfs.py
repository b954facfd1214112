"""Cuts a Debian 12 root filesystem (an mmdebstrap tar) down to what distroless cc-debian12 holds.

Usage: distroless_rootfs.py IN.tar OUT.tar

distroless `cc-debian12` is not a Debian install: it is the files of a handful of packages (glibc,
libgcc, libstdc++, libgomp, OpenSSL, tzdata, netbase, base-files), the CA bundle, a passwd file
with root, nobody and nonroot (65532), and nothing else: no shell, no package manager, no dpkg
database. This keeps exactly those packages' files from a full essential install (read from
dpkg's file lists inside IN.tar) and adds the users, so the stand-in built from it behaves like
the real image: a binary that needs anything else fails here as it would there.
"""

import io
import sys
import tarfile

PACKAGES = ["base-files", "netbase", "tzdata", "libc6", "libgcc-s1", "libgomp1", "libstdc++6", "libssl3"]
# Of ca-certificates, distroless ships only the bundle that its postinst generates.
EXTRA_FILES = ["etc/ssl/certs/ca-certificates.crt"]
DROPPED_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/lintian/", "usr/share/info/")

PASSWD = """root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
"""
GROUP = """root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
"""
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"


def package_paths(members, package):
    """Paths listed by dpkg for an installed package (either list file name)."""
    for name in (f"var/lib/dpkg/info/{package}.list", f"var/lib/dpkg/info/{package}:amd64.list"):
        if name in members:
            return members[name][1].decode().split()
    raise SystemExit(f"distroless_rootfs: package {package} is not installed in the input")


def main(src, dst):
    members = {}
    with tarfile.open(src) as tar:
        for m in tar:
            name = m.name.removeprefix("./").rstrip("/")
            data = tar.extractfile(m).read() if m.isfile() else None
            members[name] = (m, data)

    # bookworm merges /bin, /lib, /lib64 and /sbin into /usr: dpkg lists the old paths.
    merged = {name: m.linkname for name, (m, _) in members.items() if "/" not in name and m.issym()}

    def resolve(path):
        first, _, rest = path.strip("/").partition("/")
        if first in merged:
            return f"{merged[first]}/{rest}".rstrip("/")
        return path.strip("/")

    keep = set(merged)
    for package in PACKAGES:
        for path in package_paths(members, package):
            path = resolve(path)
            if path not in ("", ".") and not path.startswith(DROPPED_PREFIXES):
                keep.add(path)
    keep.update(EXTRA_FILES)
    for path in list(keep):
        parts = path.split("/")
        keep.update("/".join(parts[:i]) for i in range(1, len(parts)))
    missing = sorted(p for p in keep if p not in members)
    if missing:
        raise SystemExit(f"distroless_rootfs: not in the input: {missing[:5]}")

    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        for path in sorted(keep):
            member, data = members[path]
            member.name = path
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        for path, mode, uid in (("root", 0o700, 0), ("home", 0o755, 0), ("home/nonroot", 0o700, 65532), ("tmp", 0o1777, 0)):
            if path in keep:
                continue
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
            out.addfile(info)
        for path, text in (("etc/passwd", PASSWD), ("etc/group", GROUP), ("etc/nsswitch.conf", NSSWITCH)):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(text.encode()), 0o644
            out.addfile(info, io.BytesIO(text.encode()))


if __name__ == "__main__":
    main(*sys.argv[1:])
