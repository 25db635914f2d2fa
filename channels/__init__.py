"""Platform adapters. Each module is one platform on its official SDK."""
