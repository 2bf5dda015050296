"""资质管理 (qualification management): institution registration with attachments, departments
and doctors, the review workflow (one transition table) and progress tracking — chapter 5 of the
data access instructions (审批信息完善流程)."""
