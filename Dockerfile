# The member image (docs/operations.md, "Kubernetes"):
#   docker build -t pykka-membership:0.1.0 .
#   docker run --rm pykka-membership:0.1.0 member --cluster shop --bind 0.0.0.0:5701
# The first stage builds the wheel with the locked build backend; the second installs it with its
# dependencies at the locked versions (requirements/test.txt, as `make wheel-smoke` does) and runs
# `membership` as an unprivileged user. ENTRYPOINT in exec form: the member is PID 1 and gets the
# SIGTERM of `docker stop` or Kubernetes itself, which it answers with a graceful leave.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements/ requirements/
RUN sed -n 's/^\([A-Za-z0-9_.-]*==[^ ;]*\).*/\1/p' requirements/test.txt >/constraints.txt \
 && pip install --no-cache-dir -c /constraints.txt setuptools
COPY pyproject.toml README.md LICENSE ./
COPY actors/ actors/
COPY messages/ messages/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .

FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /constraints.txt /dist/ /tmp/install/
RUN pip install --no-cache-dir -c /tmp/install/constraints.txt /tmp/install/*.whl \
 && rm -rf /tmp/install \
 && groupadd --system --gid 10001 membership \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin membership
USER 10001:10001
# 5701: the member's links (--bind); 8558: management over HTTP (--http).
EXPOSE 5701 8558
ENTRYPOINT ["membership"]
CMD ["--help"]
