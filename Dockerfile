FROM python:3.11-slim

# git for ops repo sync; nothing else is needed at run time.
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
