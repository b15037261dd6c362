"""HTTP views (blueprints): thin layers over the domain modules."""
