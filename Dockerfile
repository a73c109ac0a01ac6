# The image fly.toml builds: one image, two process groups (web, worker).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DESKLINE_LOG_FORMAT=json
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY storage ./storage
# The versions CI tested (constraints.txt, `make lock`), not whatever is newest today.
RUN pip install --no-cache-dir -c constraints.txt .
RUN useradd --system --uid 10001 deskline
USER deskline
EXPOSE 8080
# `python -m bot web|worker` stop cleanly on SIGTERM (fly.toml's kill_signal).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "web"]
