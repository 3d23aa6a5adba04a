# Debian packages: the age CLI (interop oracle for envelope encryption) and a
# static busybox (the root filesystem of kubesim's images and the scanner).
apt_install age busybox-static
