# The Debian release is fixed here (python:3.11-slim has been trixie since August 2025): it is
# what decides which git and ca-certificates apt can install below.
FROM python:3.11-slim-trixie

# git for ops repo sync; nothing else is needed at run time.
# Not pinned to exact versions (DL3008): Debian keeps only the newest revision of a package in
# a release's archive, so an exact pin breaks the next build after a point release or security
# update, and these two are the ones whose updates we want (git parses what remotes send;
# ca-certificates is the set of trusted roots).  The release is pinned by the tag above.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/reconciler --create-home reconciler

WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY migrations ./migrations
RUN pip install --no-cache-dir . && rm -rf /src

USER 10001
WORKDIR /var/lib/reconciler
ENV RECONCILER_REPOS_DIR=/var/lib/reconciler/repos \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["reconciler"]
CMD ["run"]
