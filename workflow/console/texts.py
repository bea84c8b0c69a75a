"""The console's words in English and Chinese; the language comes from the ``lang``
cookie (the switch), else the browser's ``Accept-Language``."""

from __future__ import annotations

LANGUAGES = ("en", "zh")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "casework", "sign_in": "Sign in", "token": "Token", "sign_out": "Sign out",
        "queue": "My queue", "overdue": "Overdue board", "open": "Open a complaint",
        "reports": "Reports", "audit": "Audit", "case": "Case", "state": "State",
        "owner": "Owner", "branch": "Branch", "customer": "Customer", "category": "Category",
        "channel": "Channel", "summary": "Summary", "contact": "Contact",
        "priority": "Priority", "received": "Received", "next_due": "Next deadline",
        "level": "Level", "late": "Late by", "clock": "Clock", "events": "Timeline",
        "chain_ok": "Hash chain verified", "chain_broken": "Hash chain BROKEN",
        "actions": "What can be done now", "note": "Note", "fire": "Record",
        "no_cases": "Nothing here.", "received_at": "Received at (back-fill)",
        "submit": "Open", "read_only": "Auditors read and verify; they record nothing.",
        "verify_all": "Verify everything", "verify_case": "Verify one case",
        "export": "Download the export (NDJSON)", "ok": "All chains and replays verify",
        "problems": "Problems", "period_from": "From", "period_to": "To", "show": "Show",
        "compliance": "Compliance", "met": "met", "breached": "breached",
        "refused": "Refused", "language": "中文", "due_in": "due in", "overdue_by": "late",
        "sla": "SLA clocks", "used": "used", "target": "target", "actor": "Who",
        "when": "When", "event": "Event", "cases": "cases", "welcome": "Signed in as",
        "checkpoints": "Checkpoints are signed with `casework checkpoint` on the server.",
        "today": "Compliance, cases received today",
        "timer_appointment": "Visit window ends", "timer_routed": "Routed unit's time ends",
        "timer_part_arrival": "Part promised by", "timer_contact": "Call the customer by",
        "timer_repair": "Repair promised by",
        "week": "Compliance, cases of the last 7 days", "charts": "with charts",
        "checkpoint": "Checkpoint (the JSON `casework checkpoint` wrote)",
        "keyring": "Keyring (its public keys)", "verify_checkpoint": "Verify the checkpoint",
        "tokens": "Tokens", "role": "Role", "make_token": "Make a token", "revoke": "Revoke",
        "revoked": "revoked",
        "token_once": "The new token, shown this once: give it to its person.",
        "login_expired": "The sign-in form has expired or came from another site: "
        "load this page again and sign in here.",
        "database_read_only": "The database is read-only just now (a standby or a "
        "read-only file): signing in is not possible; try again later or use the primary.",
        "worker_stale": "The SLA worker last ran {minutes} min ago: deadlines, warnings and "
        "escalation mail wait until it runs again.",
        "worker_none": "No SLA worker has run yet: deadlines, warnings and escalation mail "
        "wait until `casework worker` runs.",
        "yes": "yes", "no": "no", "warranty_until": "{remedy} until {day}",
        "warranty_ended": "{remedy} ended {day}", "warranty": "Three guarantees",
        "choice.customer": "waiting for the customer", "choice.part": "waiting for a part",
        "choice.repeat": "a repeat", "choice.duplicate": "a duplicate",
        "search": "Search", "search_hint": "Case number, customer, phone, serial or order number",
        "no_results": "Nothing found for this.", "customer_cases": "Cases of",
        "more_actions": "More actions", "next_action": "Next step", "late_by": "late {span}",
        "left": "{span} left", "no_clock": "no deadline running",
        "erased_case": "This customer's personal data was erased: nothing may be sent to "
        "them and no contact is offered.",
        "erase": "Erase a customer", "erase_find": "Find the cases",
        "erase_confirm": "Erase this customer's personal data",
        "erase_check": "Check each case is this person's: branch, received date, contact.",
        "erase_people": "These cases carry {count} different contacts: they may be different "
        "people with one name; every case below is erased.",
        "erase_reason": "Why (recorded)", "erase_done": "Erased: {cases} case(s).",
        "filters": "Filter", "all": "all", "only_late": "late only", "previous": "Previous",
        "next": "Next", "page": "Page", "product": "Customer and product",
        "this_month": "This month", "last_7_days": "Last 7 days", "back": "Back",
        "attachments": "Attachments", "linked": "Linked cases", "open_work": "open work",
        "case_not_found": "No case {case} that you may see.",
        "file": "File", "attach": "Attach", "kind": "Kind", "field.name": "File name",
        "field.size": "Size", "erased_value": "(erased)", "field.due_at": "Due at",
        "field.late_by_s": "Late by", "field.party": "Who answers",
        "field.repair_due": "Repair promised by", "field.policy": "SLA policy",
    },
    "zh": {
        "title": "casework 投诉处理", "sign_in": "登录", "token": "令牌", "sign_out": "退出",
        "queue": "我的待办", "overdue": "超时看板", "open": "登记投诉", "reports": "报表",
        "audit": "审计", "case": "投诉单", "state": "状态", "owner": "负责人",
        "branch": "网点", "customer": "客户", "category": "类别", "channel": "渠道",
        "summary": "投诉内容", "contact": "联系方式", "priority": "优先级",
        "received": "受理时间", "next_due": "下一时限", "level": "升级级别",
        "late": "超时", "clock": "时钟", "events": "处理记录", "chain_ok": "哈希链校验通过",
        "chain_broken": "哈希链已损坏", "actions": "当前可执行的操作", "note": "备注",
        "fire": "记录", "no_cases": "暂无。", "received_at": "受理时间（补录）",
        "submit": "登记", "read_only": "审计员只读、只校验，不做任何记录。",
        "verify_all": "校验全部", "verify_case": "校验单个投诉", "export": "下载导出（NDJSON）",
        "ok": "全部哈希链与重放校验通过", "problems": "问题", "period_from": "从",
        "period_to": "到", "show": "查看", "compliance": "达标率", "met": "达标",
        "breached": "超时", "refused": "未能执行", "language": "English",
        "due_in": "剩余", "overdue_by": "已超时", "sla": "时限", "used": "已用",
        "target": "目标", "actor": "操作人", "when": "时间", "event": "事件",
        "cases": "单", "welcome": "当前用户",
        "checkpoints": "检查点由服务器上的 `casework checkpoint` 签名。",
        "today": "今日受理投诉的达标率", "week": "近7天受理投诉的达标率", "charts": "含图表",
        "timer_appointment": "预约上门时段截止", "timer_routed": "责任部门处理时限",
        "timer_part_arrival": "配件承诺到货", "timer_contact": "联系客户截止",
        "timer_repair": "维修承诺完成",
        "checkpoint": "检查点（`casework checkpoint` 生成的 JSON）", "keyring": "公钥环",
        "verify_checkpoint": "校验检查点", "tokens": "令牌", "role": "角色",
        "make_token": "生成令牌", "revoke": "吊销", "revoked": "已吊销",
        "token_once": "新令牌仅显示这一次，请交给使用者。",
        "login_expired": "登录表单已过期或来自其他网站：请重新加载本页后在此登录。",
        "database_read_only": "数据库当前只读（备库或只读文件），无法登录；请稍后再试或使用主库。",
        "worker_stale": "SLA 计时服务上次运行在 {minutes} 分钟前："
        "到期、预警和升级邮件要等它恢复后才会处理。",
        "worker_none": "SLA 计时服务尚未运行："
        "到期、预警和升级邮件要等 `casework worker` 运行后才会处理。",
        "yes": "是", "no": "否", "warranty_until": "{remedy}至 {day}",
        "warranty_ended": "{remedy}已于 {day} 截止", "warranty": "三包",
        "choice.customer": "等待客户", "choice.part": "等待配件",
        "choice.repeat": "重复投诉", "choice.duplicate": "重复登记",
        "search": "查找", "search_hint": "投诉单号、客户、电话、串号或订单号",
        "no_results": "没有找到。", "customer_cases": "客户的投诉：",
        "more_actions": "更多操作", "next_action": "下一步", "late_by": "已超时 {span}",
        "left": "剩余 {span}", "no_clock": "无计时",
        "erased_case": "此客户的个人信息已删除：不再向其发送任何消息，也不提供联系操作。",
        "erase": "删除客户信息", "erase_find": "查找投诉单",
        "erase_confirm": "删除此客户的个人信息",
        "erase_check": "请逐单核对是否为同一人：网点、受理日期、联系方式。",
        "erase_people": "这些投诉单有 {count} 个不同的联系方式，可能是同名的不同客户；"
        "下列每一单都会被删除。",
        "erase_reason": "原因（将被记录）", "erase_done": "已删除：{cases} 单。",
        "filters": "筛选", "all": "全部", "only_late": "仅超时", "previous": "上一页",
        "next": "下一页", "page": "第", "product": "客户与商品",
        "this_month": "本月", "last_7_days": "近7天", "back": "返回",
        "attachments": "附件", "linked": "关联投诉", "open_work": "待办",
        "case_not_found": "没有您可查看的投诉单 {case}。",
        "file": "文件", "attach": "上传附件", "kind": "类型", "field.name": "文件名",
        "field.size": "大小", "erased_value": "（已删除）", "field.due_at": "到期时间",
        "field.late_by_s": "超时", "field.party": "责任方",
        "field.repair_due": "维修承诺完成日期", "field.policy": "时限策略",
    },
}  # fmt: skip


def language(cookie: str | None, accept: str | None) -> str:
    """The page's language: the switch's cookie, else the first the browser accepts."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"
