"""消息通知: the portal's message centre (消息中心) and optional e-mail through an operator's SMTP
relay, queued in an outbox in the same unit of work as the change it reports."""
