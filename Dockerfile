# One image for every smsdispatch process: workers, beat, Flower, simulators, migrations.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY smsdispatch smsdispatch
RUN pip install .
RUN useradd --create-home smsdispatch
USER smsdispatch
CMD ["smsdispatch", "--help"]
