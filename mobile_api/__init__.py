"""The service around the core, in rooms: api, web, claims, queues, worker, storage, cli."""
