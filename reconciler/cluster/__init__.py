"""The Kubernetes edge: the API client, the ordered apply and the health assessment."""
