"""Rate limits shared by every instance through leases on PostgreSQL rows."""
