"""视频调阅 (video retrieval): the client for hospitals' video services and the audit of every
viewing. Modules are added by the video work."""
