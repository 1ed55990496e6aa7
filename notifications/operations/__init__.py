"""Operations: the admin, the dashboard, /metrics, the staff digest, retention and system checks."""
