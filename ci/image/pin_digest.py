"""Records a published manifest digest on a locally built stand-in image in podman's storage.

Usage: pin_digest.py GRAPHROOT IMAGE_ID sha256:DIGEST

The Dockerfile pins its bases as `name:tag@sha256:…`, the digest of the image published in the
registry. No registry is reachable here, and a digest cannot be forged (it is the hash of the
published manifest), so no pull, mirror or local registry can serve a stand-in under it; `podman
tag` refuses digests. What podman does when it resolves `name:tag@digest` with --pull=never: it
drops the tag (as docker does) and looks for a stored image named `name` whose digests include
the one asked for. The digests of a stored image are its `digest` field plus those of its stored
manifests (containers/storage, overlay-images/images.json). Setting that field on the stand-in
makes the unchanged FROM line resolve to it, and only with exactly that digest: any other
digest still fails with "image not known". The file is edited under storage's own lock.
"""

import fcntl
import json
import pathlib
import re
import sys


def main(graphroot, image_id, digest):
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise SystemExit(f"pin_digest: not a sha256 digest: {digest}")
    images_dir = pathlib.Path(graphroot) / "overlay-images"
    with open(images_dir / "images.lock", "a+") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        path = images_dir / "images.json"
        images = json.loads(path.read_text())
        found = [image for image in images if image["id"] == image_id]
        if len(found) != 1:
            raise SystemExit(f"pin_digest: image {image_id} not in {path}")
        found[0]["digest"] = digest
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(images))
        tmp.replace(path)


if __name__ == "__main__":
    main(*sys.argv[1:])
