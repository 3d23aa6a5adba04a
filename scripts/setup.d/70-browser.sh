# Headless Chromium and its WebDriver (Debian's chromium and
# chromium-driver, versions matched by the archive): the dashboard's
# browser test drives them, injects axe-core (pinned in scripts/node) into
# each page and writes screenshots to target/artefacts/dashboard/.
apt_install chromium chromium-driver
