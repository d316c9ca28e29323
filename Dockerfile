# Dockerfile -- a container image with spoolcapd and spoolcap, built from
# this source tree with the project's autotools:
#
#     docker build -t spoolcap:0.1.0 .
#     docker run --rm -v spool:/var/lib/spoolcap spoolcap:0.1.0 --check
#
# Two stages on Debian 12 (debian:12-slim): "build" has the compilers and
# the -dev packages; the final image has only the programs, the shared
# libraries they load (tests/t-deploy-image.sh checks this list against
# the built binaries) and the CA certificates for https:// delivery.
# It runs as the unprivileged user spoolcap (uid/gid 10001, numeric so that
# Kubernetes' runAsNonRoot can check it) with the spool in
# /var/lib/spoolcap, a volume. contrib/kubernetes/ runs it as a sidecar.
#
# By default it listens on 127.0.0.1:12345: right for a sidecar sharing
# HAProxy's network namespace. SPOP has no authentication: publish the
# port only to HAProxy (--listen 0.0.0.0:12345 on a private network).

ARG DEBIAN_IMAGE=debian:12-slim

FROM ${DEBIAN_IMAGE} AS build
# Build dependencies: README.md "Build from source", with libmicrohttpd
# (the metrics listener) and OpenSSL's libcrypto (hashes for redaction).
# libsystemd is left out: no systemd in a container.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	autoconf automake libtool pkg-config gcc make \
	libev-dev liblmdb-dev libzstd-dev libcurl4-openssl-dev libdeflate-dev zlib1g-dev \
	libinih-dev libmicrohttpd-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Out-of-tree build; .dockerignore keeps local build trees out of /src.
RUN ./autogen.sh \
 && mkdir /build && cd /build \
 && /src/configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
	--without-systemd --with-systemdsystemunitdir=no \
 && make -j"$(nproc)" \
 && make install-strip DESTDIR=/out

FROM ${DEBIAN_IMAGE}
# Runtime libraries only (Debian 12 package names).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libev4 liblmdb0 libzstd1 libcurl4 libdeflate0 libinih1 libmicrohttpd12 \
	libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 spoolcap \
 && useradd --system --uid 10001 --gid spoolcap --no-create-home \
	--home-dir /var/lib/spoolcap --shell /usr/sbin/nologin spoolcap \
 && install -d -m 0750 -o spoolcap -g spoolcap /var/lib/spoolcap \
 && install -d -m 0755 /etc/spoolcap
COPY --from=build /out/usr/sbin/spoolcapd /usr/sbin/spoolcapd
COPY --from=build /out/usr/bin/spoolcap /usr/bin/spoolcap
COPY --from=build /out/usr/share/doc/spoolcap/examples/ /usr/share/doc/spoolcap/examples/
USER 10001:10001
WORKDIR /var/lib/spoolcap
VOLUME ["/var/lib/spoolcap"]
# 12345: SPOP from HAProxy; 9120: metrics, /healthz and /readyz.
EXPOSE 12345 9120
# SIGTERM is the graceful stop (pending ACKs, POSTs in flight, last commit).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/spoolcapd"]
CMD ["--spool", "/var/lib/spoolcap"]
