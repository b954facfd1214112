"""A Secret or ConfigMap volume updated the way the kubelet updates it, for the tests that show
a mounted file being picked up without a restart."""


def publish(mount, version, files):
    """Writes `files` ({name: bytes}) into `mount` as the kubelet does: the files in a new
    `..<version>` directory, then an atomic rename of the `..data` symlink onto it; the names
    the pod sees are symlinks `name -> ..data/name`, made once."""
    mount.mkdir(parents=True, exist_ok=True)
    target = mount / f"..{version}"
    target.mkdir()
    for name, content in files.items():
        (target / name).write_bytes(content)
    (mount / "..data_tmp").symlink_to(target.name)
    (mount / "..data_tmp").rename(mount / "..data")
    for name in files:
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
