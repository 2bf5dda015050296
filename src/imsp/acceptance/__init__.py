"""接入确认 (acceptance): the interface, data and video checks of a hospital's connection, and the
acceptance report (接口联调对接验收报告). Modules are added by the acceptance work."""
