# The image fly.toml builds: one image, two process groups (web, worker).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DESKLINE_LOG_FORMAT=json
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY storage ./storage
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 deskline
USER deskline
EXPOSE 8080
CMD ["python", "-m", "bot", "web"]
