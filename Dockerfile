FROM python:3.11-slim
# Production unless told otherwise: the settings then refuse every embedded default.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_ENV=production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Processes never write bytecode here (PYTHONDONTWRITEBYTECODE): the project's modules are compiled
# once, in the image, rather than from source at every start of every process and command.
RUN python -m compileall -q accounts appointments config notifications tasks
RUN useradd --system --home /app app && mkdir -p /app/var && chown app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--preload", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30"]
