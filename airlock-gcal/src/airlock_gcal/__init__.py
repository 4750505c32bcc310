"""Google Calendar for Airlock."""
