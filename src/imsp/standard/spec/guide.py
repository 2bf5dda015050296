"""Chapters for the integrator: the business flow of one online follow-up visit, client examples
in Java and C#, and the appendix (version, release, compatibility and deprecation, change log)."""

from __future__ import annotations

from importlib import resources
from typing import Final

from imsp.standard.model import Standard
from imsp.standard.ruleset import load_rules
from imsp.standard.sample import dependency_order
from imsp.standard.spec.document import Part, code, link
from imsp.standard.spec.services import anchor

#: Grace period during which supervision treats a record whose referenced record has not arrived
#: yet as pending instead of a violation (数据标准 V1.1 §上传顺序).
PENDING_HOURS: Final = 48

#: The change log (变更记录): version, date, change, reason. Newest first.
CHANGES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("V1.1", "2026-11-30", "行政区划代码表 region 扩展为全国省、地、县三级代码（2024 年区划），2012 年以来撤销的代码列为“已撤销”，接受并警告（code_retired）",
     "V1.0 只含河北省县级代码，北京、天津等外省市多点执业医师（如 firstAreaCode 110101）被误拒；历史记录仍使用撤并前的代码"),
    ("V1.1", "2026-11-30", "患者现住址 areaCode 引用 region 表", "V1.0 不做值域校验，999999 之类的错误代码得以入库"),
    ("V1.1", "2026-11-30", "新增节点 diagCodeType（诊断编码体系，非必填，V1.0 报文可不含）；国家临床版 2.0 逐码校验，WHO ICD-10 三位/四位类目及平台无代码表的体系（医保版等）接受并警告（diag_who_category、diag_unchecked）",
     "V1.0 把 I10、J06.9 等 WHO 编码和医保版编码一律按值域错误（-97）拒收，而它们是真实有效的诊断；中医病证编码仍按中医病证分类与代码校验"),
    ("V1.1", "2026-11-30", "预约状态代码补齐天津规范的 1、7、8、9、10、11、14；远程医疗业务状态补齐退款类状态 10～18",
     "天津规范使用的状态码在 V1.0 中被误拒（-97）"),
    ("V1.1", "2026-11-30", "国籍 nationality 引用 GB/T 2659 三位字母代码表 nationality；两位字母、三位数字代码作为别名接受",
     "V1.0 不做值域校验，“中国”之类的自由文本得以入库"),
    ("V1.1", "2026-11-30", "新增记录内规则：年龄与出生日期或居民身份证号码中的出生日期一致（实足年龄，age_mismatch）",
     "V1.0 接受与出生日期相差十岁的年龄、成人身份证号码配 4 岁年龄；年龄决定监护人等必填条件"),
    ("V1.1", "2026-11-30", "新增记录内规则：缴费总金额 = 个人支付 + 医保统筹支付 + 其他支付（±0.01，sum_mismatch）；处方明细金额 = 单价 × 药品总量（±0.01，product_mismatch）",
     "V1.0 接受金额不平的记录，监管统计因此失真"),
    ("V1.1", "2026-11-30", "新增记录内规则：处方有效天数与有效开始、结束日期一致（含首尾两日，period_mismatch）",
     "V1.0 接受有效天数与起止日期矛盾的处方，“处方有效期”监管无从判断"),
    ("V1.1", "2026-11-30", "回执 data 增加 standardVersion（校验所用的数据标准版本）", "医院与监管方需要知道一条记录按哪个版本校验"),
    ("V1.1", "2026-11-30", "规范增加：每个节点的示例值、每个服务的多种完整示例、“一次在线复诊产生哪些数据”、Java 与 C# 客户端示例、版本与废弃策略、本变更记录；设计说明改为只引用本规范自身的内容",
     "接入方应能只凭本规范完成对接"),
    ("V1.0", "2026-11-25", "首次发布：授权码获取服务、各数据集的上传服务、代码表、错误代码与 JSON Schema", "—"),
)  # fmt: skip


def supervision_rules(std: Standard, chapter: int) -> Part:
    """监管规则: the rules the platform checks on stored data, from the rule catalogue (data)."""
    n = chapter
    catalogue = load_rules(std.version)
    part = Part(f"{n}-rules", f"{n} 监管规则")
    part.h(1, f"{n} 监管规则", "rules")
    part.p(
        "监管规则检查已入库的数据（单条记录与跨数据集的关联），结果记为监管发现（违规或风险提示），"
        "由监管方处理；监管规则不影响上传回执，违反监管规则的记录照常入库。本章列出平台检查的全部规则"
        f"（{catalogue.title}，共 {len(catalogue)} 条）；条款号未经逐字核对的标注“条款号待核实”。"
    )
    part.h(2, f"{n}.1 规则一览", "rules-list")
    part.table(
        ("编号", "名称", "性质", "涉及数据集"),
        [
            (link(r.id, f"rule-{r.id}"), r.name, r.severity_label,
             "、".join(std.datasets[d].name for d in r.datasets))
            for r in catalogue
        ],
    )  # fmt: skip
    part.h(2, f"{n}.2 规则说明", "rules-detail")
    for r in catalogue:
        part.h(3, f"{r.id} {r.name}", f"rule-{r.id}")
        part.table(
            ("项目", "内容"),
            [
                ("依据", r.citation_display),
                ("性质", r.severity_label),
                ("涉及数据集", "、".join(
                    link(f"{std.datasets[d].name}（{std.datasets[d].path}）", anchor(std.datasets[d]))
                    for d in r.datasets)),
                ("检查内容", r.text),
            ],
        )  # fmt: skip
    return part


def flow(std: Standard, chapter: int) -> Part:
    """“一次在线复诊产生哪些数据”: services, order, keys, late references."""
    n = chapter
    part = Part(f"{n}-flow", f"{n} 一次在线复诊产生哪些数据")
    part.h(1, f"{n} 一次在线复诊产生哪些数据", "flow")
    ds = std.datasets

    def svc(c: str) -> str:
        return link(f"{ds[c].name}（{ds[c].path}）", anchor(ds[c]))

    part.p(
        "以一位高血压患者在互联网医院的一次在线复诊为例，说明一次业务会产生哪些记录、按什么顺序上传、"
        "记录之间靠哪些节点关联。"
    )
    part.h(2, f"{n}.1 业务过程与产生的记录", "flow-steps")
    part.table(
        ("步骤", "业务", "上传服务", "说明"),
        [
            ("0", "接入前", f"{svc('organization')}、{svc('department')}、{svc('doctor')}、{svc('agreement')}", "机构、科室、医务人员、服务协议（含知情同意书）；信息变化时再次上传"),
            ("1", "患者建档、实名认证", svc("patient"), "首次就诊或信息变化时上传"),
            ("2", "预约挂号", svc("register"), "取消、爽约、退款时以同一业务主键再次上传（覆盖）"),
            ("3", "挂号缴费", svc("payment"), "业务类型为挂号；退费为另一条收退费标志为 2 的记录，originalPayId 指向原收费记录"),
            ("4", "在线复诊（接诊、书写病历）", svc("outpatient"), "复诊须有线下原诊断；首诊须终止互联网诊疗"),
            ("5", "开具处方、药师审方", f"{svc('prescription')}、{svc('prescription_item')}", "处方与明细分开上传，明细以 recipeID 关联；明细条数 itemCount 须与明细记录数一致"),
            ("6", "处方缴费", svc("payment"), "业务类型为处方，recipeID 指向处方"),
            ("7", "开具检查检验（如需）", f"{svc('inspection')}、{svc('lis')}、{svc('pacs')}", "报告以 applyId 关联申请"),
            ("8", "服务评价", svc("appraise"), "bussID 指向被评价的业务记录"),
        ],
    )  # fmt: skip
    part.h(2, f"{n}.2 上传顺序", "flow-order")
    order = "、".join(code(d.path) for d in dependency_order(std))
    part.p(
        "被引用的记录先上传：基本信息（机构、科室、人员、协议）在前，业务数据按业务发生的先后。"
        f"按数据集之间的引用关系，建议顺序为：{order}。"
        "业务数据宜在业务结束后尽快上传（一般不晚于次日）；同一记录状态变化时按业务主键再次上传即可，"
        "平台保留全部历史版本。"
    )
    part.h(2, f"{n}.3 关联记录的节点", "flow-keys")
    part.table(
        ("节点", "含义", "出现在", "指向"),
        [
            (code("organID"), "机构统一社会信用代码", "全部记录", svc("organization")),
            (code("patientId"), "院内患者唯一标识", "各业务数据集", svc("patient")),
            (code("doctorCertID"), "医务人员身份证号", "各业务数据集", svc("doctor")),
            (code("deptID"), "院内科室编码", "各业务数据集", svc("department")),
            (code("bussID"), "业务流水号（挂号、复诊、咨询、远程医疗）", f"{svc('outpatient')}、{svc('prescription')}、{svc('payment')}、{svc('appraise')}", f"{svc('register')} 等业务记录"),
            (code("recipeID"), "处方号", f"{svc('prescription_item')}、{svc('payment')}", svc("prescription")),
            (code("applyId"), "检查检验申请单号", f"{svc('lis')}、{svc('pacs')}、{svc('payment')}", svc("inspection")),
            (code("originalPayId"), "原收费记录的缴费流水号", "退费记录", svc("payment")),
        ],
    )  # fmt: skip
    part.h(2, f"{n}.4 被引用的记录尚未到达时", "flow-late")
    part.p(
        "记录引用的记录（如处方引用的病历、明细引用的处方）尚未上传时，平台不拒收：该记录照常入库，"
        f"回执以警告给出 msgCode {code('-95')}（关联数据不存在）及缺少的关联。监管规则在 {PENDING_HOURS} 小时"
        "宽限期内把它视为“待关联”，不记违规；被引用的记录在宽限期内到达即自动关联。超过宽限期仍未到达的，"
        "按" + link("R43 关联数据不存在", "rule-R43") + "记入监管发现。因此网络中断或批处理先后颠倒"
        "不会丢失数据，但应尽量按上述顺序上传。"
    )
    return part


def _client_source(name: str) -> str:
    return resources.files("imsp.standard.spec").joinpath("clients", name).read_text("utf-8")


def clients(chapter: int) -> Part:
    """Minimal Java 17 and C# clients: token, chunked upload, refresh and resend once."""
    n = chapter
    part = Part(f"{n}-clients", f"{n} 客户端示例（Java、C#）")
    part.h(1, f"{n} 客户端示例（Java、C#）", "clients")
    part.p(
        "省内医院信息系统多以 Java 或 C# 编写。以下两个最小示例不依赖第三方库，演示完整流程："
        "获取访问令牌（"
        + link("2 授权码获取服务", "token")
        + "）；以分块传输（"
        + code("Transfer-Encoding: chunked")
        + "）上传一批记录；收到令牌错误（令牌无效或过期）时"
        "重新获取令牌并重发一次；读取逐条回执。平台地址、appId 与 appSecret 从命令行参数传入。"
    )
    part.h(2, f"{n}.1 Java 17（java.net.http）", "client-java")
    part.p(
        "编译与运行：" + code("javac ImspClient.java") + "，"
        + code("java ImspClient <平台地址> <appId> <appSecret> <服务> <记录文件.json>") + "。"
    )  # fmt: skip
    part.code(_client_source("ImspClient.java"), "java")
    part.h(2, f"{n}.2 C#（.NET HttpClient）", "client-csharp")
    part.p(
        "适用于 .NET 6 及以上："
        + code("dotnet run -- <平台地址> <appId> <appSecret> <服务> <记录文件.json>")
        + "。流程与 Java 示例相同。"
    )
    part.code(_client_source("ImspClient.cs"), "csharp")
    return part


def appendix(std: Standard) -> Part:
    meta = std.meta
    part = Part("A-appendix", "附录 版本、兼容性与变更记录")
    part.h(1, "附录 版本、兼容性与变更记录", "appendix")
    fields = sum(1 for ds in std.datasets.values() for _ in ds.walk())
    codes_ = sum(len(t.entries) for t in std.tables.values())
    part.h(2, "A.1 版本信息", "version")
    part.table(
        ("项目", "内容"),
        [
            ("规范名称", std.title),
            ("版本", f"V{std.release}"),
            ("发布日期", str(meta.get("released", ""))),
            ("发布", str(meta.get("publisher", ""))),
            ("数据集", f"{len(std.datasets)} 个，节点 {fields} 个（含明细节点）"),
            ("代码表", f"{len(std.tables)} 张，代码 {codes_} 个"),
        ],
    )
    part.h(2, "A.2 兼容性与废弃策略", "compatibility")
    part.ul(
        [
            "版本号为“主版本.次版本”。次版本（如 V1.0 → V1.1）只做兼容的修改：增加非必填节点"
            "（旧版本报文可以不含）、增加代码、放宽限制、增加针对错误数据的校验；"
            "按旧版本编制的有效数据在新次版本中不会被拒收。",
            "不兼容的修改（删除或改名节点、改变节点含义、收紧有效数据的取值）只在新的主版本中进行，"
            "至少提前 6 个月公布，新旧主版本并行受理至少 12 个月。",
            "计划废弃的节点和代码先在本规范中标注“废弃”，并在回执中以警告提示，至少保留一个次版本后才可在下一个主版本中删除。",
            "回执 "
            + code("data.standardVersion")
            + " 写明校验该批记录的版本。已按旧版本校验入库的记录"
            "不会按新版本重新校验，也不会因新版本增加的规则被删除或改判；需要按新版本校验的，医院重新上传即可。",
        ]
    )
    part.h(2, "A.3 变更记录", "changelog")
    part.table(("版本", "日期", "变更", "原因"), [(v, d, c, r) for v, d, c, r in CHANGES])
    return part


__all__ = ["CHANGES", "PENDING_HOURS", "appendix", "clients", "flow", "supervision_rules"]
