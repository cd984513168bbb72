"""QuickBooks Online through intuit-oauth and python-quickbooks (docs/integrations.md)."""
