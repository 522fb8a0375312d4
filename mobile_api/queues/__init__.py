"""Leased work in the database: assessment jobs and webhook deliveries, and the webhooks sent."""
