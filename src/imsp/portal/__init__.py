"""Server-rendered web UI (资质管理系统 and supervision pages) calling domain services."""
