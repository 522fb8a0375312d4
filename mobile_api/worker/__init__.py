"""What runs on a Celery worker: the Celery app, its thin tasks and the assessment they run."""
