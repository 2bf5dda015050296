"""视频调阅 (video retrieval): each institution's video service, the client that calls it, playback
through the platform with Range passthrough, the viewing audit, and the acceptance check.

The protocol itself is data in :mod:`imsp.standard.video`; this package is the platform's side.
"""
