# The browser image: headless Chromium from Debian, for the test that opens the HTML reports.
# Not part of the lab: `make browser` builds it; the test prints the page, its console and a
# screenshot (tests/browser.rs). A Dockerfile of its own, so neither the lab's images nor this
# one build the other's stages (the legacy builder builds every stage before the one asked for).
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
COPY docker/apt-install /usr/local/sbin/apt-install
RUN apt-install chromium fonts-dejavu-core
# Run as the caller (docker run --user, HOME=/tmp), so a screenshot belongs to whoever asked.
ENV HOME=/tmp
ENTRYPOINT ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars"]
