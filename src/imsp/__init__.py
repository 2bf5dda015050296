"""IMSP — 河北省互联网医疗服务监管平台 (Internet Medical Service Supervision Platform)."""

__version__ = "0.1.0"
