"""Vocabulary of the test-data generator: names, places, departments, conditions, drugs, tests.

Everything here is plain data. Codes that belong to a code table (ICD-10, subjects, routes, dosage
forms, frequencies, exam types …) are checked against the packaged tables by
``tests/standard/test_sample.py``, so a table change that orphans a code fails loudly. Names of
diagnoses and TCM patterns are *not* repeated here: the generator reads them from the tables.

The institutions, people and numbers are fictitious; hospital names are only plausible Hebei
names carrying generated (valid but unassigned) credit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Final

# --------------------------------------------------------------------------- people

#: Common surnames, most frequent first (weights fall off with the position).
SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
    "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
    "雷钱汤尹黎易常武乔贺赖龚文"
)
#: Population share (%) of the 20 most common surnames, Ministry of Public Security household
#: register statistics (公安部户政管理研究中心, 2007): 王 7.25, 李 7.19, 张 6.83 … 罗 0.86. The other
#: surnames of SURNAMES share the rest with weights falling off as 1/rank (the top 100 surnames
#: cover about 85 % of the population).
_TOP_SURNAME_SHARES: Final = (
    7.25, 7.19, 6.83, 5.38, 4.53, 3.08, 2.29, 2.23, 2.12, 2.05,
    1.67, 1.54, 1.31, 1.26, 1.21, 1.18, 1.17, 1.15, 1.05, 0.86,
)  # fmt: skip
SURNAME_WEIGHTS: Final = _TOP_SURNAME_SHARES + tuple(
    0.86 * 20 / rank for rank in range(21, len(SURNAMES) + 1)
)
SURNAME_CUM_WEIGHTS: Final = tuple(accumulate(SURNAME_WEIGHTS))
#: Professional titles of the doctors serving online follow-up visits, junior → senior (住院医师,
#: 主治医师, 副主任医师, 主任医师), in %: close to the national physicians' mix (卫生健康统计年鉴:
#: about 40 % 师级, 31 % 中级, 14 % 副高, 6 % 正高) shifted towards seniors, since internet
#: hospitals let doctors with at least three years of independent practice serve online.
TITLE_MIX: Final = (26, 40, 22, 12)
#: Lengths of (non-herbal) prescriptions — (days, long-term prescription 长期处方) — and their
#: weights in %: 7 days 22, 14 days 28, 28 days 40, and long-term prescriptions of 4 weeks 10 % —
#: an assumed mix for chronic-disease follow-up (no provincial statistic is published).
#: 《长期处方管理规范（试行）》: a long-term prescription is usually within 4 weeks, at most 12 for a
#: stable patient; supervision flags one over 4 weeks as a risk (R27), so none is generated longer.
RX_LENGTHS: Final = ((7, False), (14, False), (28, False), (28, True))
RX_LENGTH_WEIGHTS: Final = (22, 28, 40, 10)
#: Share of patients with a herbal regimen whose follow-up visit is with a TCM doctor (中医科),
#: who then writes a herbal prescription (中药饮片处方).
TCM_FOLLOW_UP_SHARE: Final = 0.35

MALE_CHARS: Final = (
    "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣晨阳建国志文博峰海东亮成"
    "振宏晓永庆德立新春光松"
)
FEMALE_CHARS: Final = (
    "芳娜敏静丽艳娟霞秀玲桂英兰萍红梅琳雪婷洁颖慧倩晶佳妍欣悦雨涵怡琪璐蕾薇燕凤云霞月莉丹菲瑶馨"
)
#: Mobile prefixes of the three carriers (数据标准 V1.0 format ``mobile``: 1[3-9]xxxxxxxxx).
MOBILE_PREFIXES: Final = [
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]

# --------------------------------------------------------------------------- places (Hebei)

#: Prefecture-level city code → (telephone area code, postcode prefix).
CITY_CODES: Final[dict[str, tuple[str, str]]] = {
    "130100": ("0311", "050"),
    "130200": ("0315", "063"),
    "130300": ("0335", "066"),
    "130400": ("0310", "056"),
    "130500": ("0319", "054"),
    "130600": ("0312", "071"),
    "130700": ("0313", "075"),
    "130800": ("0314", "067"),
    "130900": ("0317", "061"),
    "131000": ("0316", "065"),
    "131100": ("0318", "053"),
}
STREETS: Final = [
    "中华大街",
    "建设大街",
    "裕华路",
    "和平路",
    "胜利大街",
    "友谊大街",
    "槐安路",
    "体育大街",
    "东风路",
    "新华路",
    "光明路",
    "人民路",
    "红旗大街",
    "育才街",
    "长征街",
    "燕赵大街",
    "中山路",
    "北二环路",
    "翟营大街",
    "学府路",
    "朝阳路",
    "文化路",
]
COMMUNITIES: Final = [
    "阳光小区",
    "和谐家园",
    "幸福里",
    "金色家园",
    "怡景园",
    "康乐小区",
    "世纪花园",
    "丽都花园",
    "翠屏山庄",
    "万象新城",
    "紫薇苑",
    "书香园",
    "瑞城小区",
    "锦绣华庭",
    "馨港庄园",
    "润德花园",
]

# --------------------------------------------------------------------------- institutions


@dataclass(frozen=True, slots=True)
class Hospital:
    """Another institution: a telemedicine partner, a doctor's first practice site, a lab."""

    name: str
    city: str  # prefecture code
    category: str  # org_category
    level: str  # hospital_level
    grade: str  # hospital_grade


PARTNERS: Final = (
    Hospital("河北医科大学第二医院", "130100", "A100", "3", "1"),
    Hospital("石家庄市第一医院", "130100", "A100", "3", "1"),
    Hospital("保定市第一中心医院", "130600", "A100", "3", "1"),
    Hospital("唐山市工人医院", "130200", "A100", "3", "1"),
    Hospital("邯郸市中心医院", "130400", "A100", "3", "1"),
    Hospital("沧州市中心医院", "130900", "A100", "3", "1"),
    Hospital("河北省中医院", "130100", "A210", "3", "1"),
)
DELIVERY_FIRMS: Final = ("顺丰速运", "京东物流", "中国邮政 EMS", "医院自营配送")

# --------------------------------------------------------------------------- departments


@dataclass(frozen=True, slots=True)
class DeptDef:
    dept_id: str
    name: str
    subject: str  # subject (诊疗科目) code
    dept_type: str  # dept_type code
    kind: str  # clinical | pharmacy | lab | imaging
    practice: str  # practice_scope of its physicians
    intro: str


#: The departments of every generated institution, in index order. The order matters: the
#: generator only refers to departments and staff with an index below the requested count, so the
#: first few cover every role (a clinic, the pharmacy, the laboratory, imaging).
DEPARTMENTS: Final = (
    DeptDef(
        "0200",
        "全科医疗科",
        "02",
        "02",
        "clinical",
        "21",
        "开展常见病、慢性病互联网复诊与健康咨询。",
    ),
    DeptDef("9000", "药剂科", "90", "69", "pharmacy", "", "负责互联网处方审核、调配与药事咨询。"),
    DeptDef(
        "0304",
        "心血管内科",
        "03.04",
        "03",
        "clinical",
        "11",
        "开展高血压、冠心病等慢性病互联网复诊。",
    ),
    DeptDef("3000", "医学检验科", "30", "30", "lab", "20", "承担互联网诊疗开具的检验项目。"),
    DeptDef(
        "0307",
        "内分泌科",
        "03.07",
        "03",
        "clinical",
        "11",
        "开展糖尿病、甲状腺疾病、痛风等慢病管理与复诊。",
    ),
    DeptDef(
        "3200",
        "医学影像科",
        "32",
        "32",
        "imaging",
        "19",
        "承担 CT、磁共振、超声与心电检查及远程影像诊断。",
    ),
    DeptDef(
        "0301",
        "呼吸与危重症医学科",
        "03.01",
        "03",
        "clinical",
        "11",
        "开展慢阻肺、哮喘等慢性呼吸系统疾病复诊。",
    ),
    DeptDef(
        "0302", "消化内科", "03.02", "03", "clinical", "11", "开展慢性胃炎、胃食管反流病等复诊。"
    ),
    DeptDef(
        "0700",
        "儿科",
        "07",
        "07",
        "clinical",
        "14",
        "开展儿童哮喘、湿疹等常见病复诊与儿童保健咨询。",
    ),
    DeptDef(
        "5000",
        "中医科",
        "50",
        "50",
        "clinical",
        "51",
        "开展中医辨证复诊，开具中药饮片与中成药处方。",
    ),
    DeptDef(
        "1301", "皮肤科", "13.01", "13", "clinical", "16", "开展湿疹、皮炎、荨麻疹等皮肤病复诊。"
    ),
    DeptDef("0403", "骨科", "04.03", "04", "clinical", "12", "开展骨关节炎、颈腰椎病等慢病复诊。"),
    DeptDef(
        "0303", "神经内科", "03.03", "03", "clinical", "11", "开展眩晕、脑血管病后遗症等复诊。"
    ),
    DeptDef(
        "0404", "泌尿外科", "04.04", "04", "clinical", "12", "开展前列腺增生等泌尿系统疾病复诊。"
    ),
)

# --------------------------------------------------------------------------- drugs


@dataclass(frozen=True, slots=True)
class Drug:
    """One catalogue drug with its usual adult regimen."""

    code: str  # 院内药品编码 drcode
    name: str  # 通用名
    trade: str  # 商品名 ("" if none)
    spec: str  # 规格 drmodel
    form: str  # dosage_form code ("" for decoction pieces)
    pack: int  # smallest units per pack
    pack_unit: str  # 盒 / 瓶 / 支 (herbs: g)
    maker: str
    atc: str
    dose: str  # single dose ("5", or "适量")
    dose_unit: str  # mg / g / μg / 吸 / 粒 …
    units: Decimal  # smallest units per dose
    freq: str  # frequency code
    route: str  # route code
    price: Decimal  # per pack (herbs: per gram)
    kind: str = "western"  # western | patent | herb
    otc: bool = False
    antibiotic: str = "0"
    remark: str = ""
    decoction: str = ""
    efficacy: str = ""  # herbs: efficacy class of the 医保中药饮片 code (01 解表 … 17 补虚)

    @property
    def national_code(self) -> str:
        """国家药品编码 (``countrydrcode``) in the shape of the NHSA code (国家医保药品分类与代码):
        西药 ``X`` + ATC level 4 + name, dosage form and maker parts; 中成药 ``Z`` + …; 中药饮片
        (10 characters) ``T`` + standard (``00``: 药典) + efficacy class + name code. No table of
        national drug codes ships with the standard, so the parts after the class are derived from
        the catalogue code (``drcode``): a unique, well-formed, fictitious code per drug."""
        if self.kind == "herb":
            return f"T00{self.efficacy}{int(self.code[-3:]):05d}"
        if self.atc:
            return f"X{self.atc[:5]}A{self.code[-3:]}A0010101{self.code[-4:]}"
        return f"Z{self.code[2:]}A0010101010"


def _d(
    code: str, name: str, trade: str, spec: str, form: str, pack: int, pack_unit: str,
    maker: str, atc: str, dose: str, dose_unit: str, units: str, freq: str, route: str,
    price: str, *, kind: str = "western", otc: bool = False, remark: str = "",
) -> Drug:  # fmt: skip
    return Drug(
        code, name, trade, spec, form, pack, pack_unit, maker, atc, dose, dose_unit,
        Decimal(units), freq, route, Decimal(price), kind, otc, "0", remark,
    )  # fmt: skip


_PFIZER = "辉瑞制药有限公司"
_AZ = "阿斯利康制药有限公司"
_BAYER = "拜耳医药保健有限公司"
_MSD = "杭州默沙东制药有限公司"
_SANOFI = "赛诺菲（杭州）制药有限公司"
_EISAI = "卫材（中国）药业有限公司"
_TASLY = "天士力医药集团股份有限公司"

DRUGS: Final[dict[str, Drug]] = {
    d.code: d
    for d in (
        _d("YP0001001", "苯磺酸氨氯地平片", "络活喜", "5mg×7片/盒", "01", 7, "盒", _PFIZER, "C08CA01", "5", "mg", "1", "qd", "1", "33.18"),
        _d("YP0001002", "厄贝沙坦片", "安博维", "150mg×7片/盒", "01", 7, "盒", _SANOFI, "C09CA04", "150", "mg", "1", "qd", "1", "28.50"),
        _d("YP0001003", "缬沙坦胶囊", "代文", "80mg×7粒/盒", "19", 7, "盒", "北京诺华制药有限公司", "C09CA03", "80", "mg", "1", "qd", "1", "30.94"),
        _d("YP0001004", "硝苯地平控释片", "拜新同", "30mg×7片/盒", "05", 7, "盒", _BAYER, "C08CA05", "30", "mg", "1", "qd", "1", "32.76", remark="整片吞服，不可嚼碎"),
        _d("YP0001005", "琥珀酸美托洛尔缓释片", "倍他乐克", "47.5mg×7片/盒", "05", 7, "盒", _AZ, "C07AB02", "47.5", "mg", "1", "qd", "1", "17.66"),
        _d("YP0001006", "盐酸二甲双胍片", "格华止", "0.5g×20片/盒", "02", 20, "盒", "中美上海施贵宝制药有限公司", "A10BA02", "0.5", "g", "1", "tid", "1", "11.20", remark="餐中或餐后服用"),
        _d("YP0001007", "阿卡波糖片", "拜唐苹", "50mg×30片/盒", "01", 30, "盒", _BAYER, "A10BF01", "50", "mg", "1", "tid", "1", "46.60", remark="与第一口饭同时嚼服"),
        _d("YP0001008", "格列美脲片", "亚莫利", "2mg×15片/盒", "01", 15, "盒", "赛诺菲（北京）制药有限公司", "A10BB12", "2", "mg", "1", "qd", "1", "37.80", remark="早餐前服用"),
        _d("YP0001009", "磷酸西格列汀片", "捷诺维", "100mg×7片/盒", "02", 7, "盒", _MSD, "A10BH01", "100", "mg", "1", "qd", "1", "45.50"),
        _d("YP0001010", "阿托伐他汀钙片", "立普妥", "20mg×7片/盒", "02", 7, "盒", _PFIZER, "C10AA05", "20", "mg", "1", "qn", "1", "39.60"),
        _d("YP0001011", "瑞舒伐他汀钙片", "可定", "10mg×7片/盒", "02", 7, "盒", _AZ, "C10AA07", "10", "mg", "1", "qn", "1", "37.10"),
        _d("YP0001012", "阿司匹林肠溶片", "拜阿司匹灵", "100mg×30片/盒", "04", 30, "盒", _BAYER, "B01AC06", "100", "mg", "1", "qd", "1", "15.80", remark="餐前服用"),
        _d("YP0001013", "硫酸氢氯吡格雷片", "波立维", "75mg×7片/盒", "02", 7, "盒", _SANOFI, "B01AC04", "75", "mg", "1", "qd", "1", "118.30"),
        _d("YP0001014", "单硝酸异山梨酯缓释片", "依姆多", "40mg×7片/盒", "05", 7, "盒", _AZ, "C01DA14", "40", "mg", "1", "qd", "1", "29.40"),
        _d("YP0001015", "沙美特罗替卡松粉吸入剂", "舒利迭", "50μg/250μg×60吸/盒", "60", 60, "盒", "葛兰素史克（中国）投资有限公司", "R03AK06", "1", "吸", "1", "bid", "5", "185.00", remark="吸入后清水漱口"),
        _d("YP0001016", "噻托溴铵粉吸入剂", "思力华", "18μg×10粒/盒", "60", 10, "盒", "上海勃林格殷格翰药业有限公司", "R03BB04", "18", "μg", "1", "qd", "5", "98.60"),
        _d("YP0001017", "布地奈德福莫特罗吸入粉雾剂", "信必可都保", "160μg/4.5μg×60吸/支", "60", 60, "支", _AZ, "R03AK07", "1", "吸", "1", "bid", "5", "226.00", remark="吸入后清水漱口"),
        _d("YP0001018", "孟鲁司特钠片", "顺尔宁", "10mg×5片/盒", "02", 5, "盒", _MSD, "R03DC03", "10", "mg", "1", "qn", "1", "38.50"),
        _d("YP0001019", "孟鲁司特钠咀嚼片", "顺尔宁", "4mg×5片/盒", "03", 5, "盒", _MSD, "R03DC03", "4", "mg", "1", "qn", "1", "33.20", remark="睡前嚼服"),
        _d("YP0001020", "雷贝拉唑钠肠溶片", "波利特", "10mg×7片/盒", "04", 7, "盒", _EISAI, "A02BC04", "10", "mg", "1", "qd", "1", "31.50", remark="早餐前服用"),
        _d("YP0001021", "奥美拉唑肠溶胶囊", "洛赛克", "20mg×14粒/盒", "21", 14, "盒", _AZ, "A02BC01", "20", "mg", "1", "qd", "1", "64.10", remark="早餐前服用"),
        _d("YP0001022", "铝碳酸镁咀嚼片", "达喜", "0.5g×20片/盒", "03", 20, "盒", _BAYER, "A02AD04", "1.0", "g", "2", "tid", "1", "24.80", otc=True, remark="餐后 1 小时嚼服"),
        _d("YP0001023", "枸橼酸莫沙必利片", "加斯清", "5mg×24片/盒", "01", 24, "盒", "住友制药（苏州）有限公司", "A03FA", "5", "mg", "1", "tid", "1", "36.00", remark="餐前服用"),
        _d("YP0001024", "氯雷他定片", "开瑞坦", "10mg×6片/盒", "01", 6, "盒", "拜耳医药（上海）有限公司", "R06AX13", "10", "mg", "1", "qd", "1", "22.50", otc=True),
        _d("YP0001025", "糠酸莫米松鼻喷雾剂", "内舒拿", "50μg×140喷/支", "58", 140, "支", "欧加隆（上海）医药科技有限公司", "R01AD09", "2", "喷", "2", "qd", "6", "78.50", remark="每侧鼻孔各 2 喷"),
        _d("YP0001026", "丁酸氢化可的松乳膏", "尤卓尔", "10g:10mg/支", "49", 1, "支", "天津金耀药业有限公司", "D07AB02", "适量", "g", "0.05", "bid", "612", "18.60", remark="薄涂于患处"),
        _d("YP0001027", "非布司他片", "优立通", "40mg×16片/盒", "02", 16, "盒", "江苏万邦生化医药集团有限责任公司", "M04AA03", "40", "mg", "1", "qd", "1", "62.00"),
        _d("YP0001028", "苯溴马隆片", "立加利仙", "50mg×10片/盒", "01", 10, "盒", "昆山龙灯瑞迪制药有限公司", "M04AB03", "50", "mg", "1", "qd", "1", "29.80", remark="早餐后服用，多饮水"),
        _d("YP0001029", "左甲状腺素钠片", "优甲乐", "50μg×100片/瓶", "01", 100, "瓶", "默克制药（江苏）有限公司", "H03AA01", "50", "μg", "1", "qd", "1", "29.00", remark="早餐前半小时空腹服用"),
        _d("YP0001030", "盐酸坦索罗辛缓释胶囊", "哈乐", "0.2mg×10粒/盒", "22", 10, "盒", "安斯泰来制药（中国）有限公司", "G04CA02", "0.2", "mg", "1", "qn", "1", "55.30"),
        _d("YP0001031", "非那雄胺片", "保列治", "5mg×10片/盒", "02", 10, "盒", _MSD, "G04CB01", "5", "mg", "1", "qd", "1", "59.90"),
        _d("YP0001032", "塞来昔布胶囊", "西乐葆", "200mg×6粒/盒", "19", 6, "盒", _PFIZER, "M01AH01", "200", "mg", "1", "qd", "1", "36.50", remark="餐后服用"),
        _d("YP0001033", "硫酸氨基葡萄糖胶囊", "维固力", "250mg×20粒/盒", "19", 20, "盒", "意大利罗达药厂", "M01AX05", "500", "mg", "2", "tid", "1", "52.00"),
        _d("YP0001034", "甲磺酸倍他司汀片", "敏使朗", "6mg×30片/盒", "01", 30, "盒", _EISAI, "N07CA01", "6", "mg", "1", "tid", "1", "42.00", remark="餐后服用"),
        _d("ZC0002001", "复方丹参滴丸", "", "27mg×180丸/瓶", "14", 180, "瓶", _TASLY, "", "270", "mg", "10", "tid", "1", "31.50", kind="patent"),
        _d("ZC0002002", "养血清脑颗粒", "", "4g×15袋/盒", "54", 15, "盒", _TASLY, "", "4", "g", "1", "tid", "1", "45.80", kind="patent", remark="开水冲服"),
        _d("ZC0002003", "百令胶囊", "", "0.5g×42粒/盒", "19", 42, "盒", "杭州中美华东制药有限公司", "", "2", "g", "4", "tid", "1", "56.00", kind="patent"),
        _d("ZC0002004", "香砂养胃丸", "", "9g×10袋/盒", "14", 10, "盒", "仲景宛西制药股份有限公司", "", "9", "g", "1", "bid", "1", "18.50", kind="patent", otc=True),
        _d("ZC0002005", "通心络胶囊", "", "0.26g×30粒/盒", "19", 30, "盒", "石家庄以岭药业股份有限公司", "", "0.78", "g", "3", "tid", "1", "38.80", kind="patent"),
        _d("ZC0002006", "仙灵骨葆胶囊", "", "0.5g×40粒/盒", "19", 40, "盒", "国药集团同济堂（贵州）制药有限公司", "", "1.5", "g", "3", "bid", "1", "42.00", kind="patent"),
    )
}  # fmt: skip


def _herb(code: str, name: str, efficacy: str, cut: str, price: str, decoction: str = "") -> Drug:
    return Drug(
        code, name, "", cut, "", 1, "g", "河北安国中药饮片有限公司", "", "", "g",
        Decimal(1), "bid", "1", Decimal(price), "herb", False, "0", "", decoction, efficacy,
    )  # fmt: skip


#: Decoction pieces (中药饮片): efficacy class (the textbook's order, as in the NHSA code: 01 解表,
#: 02 清热, 04 祛风湿, 05 化湿, 06 利水渗湿, 07 温里, 08 理气, 12 活血化瘀, 13 化痰止咳平喘,
#: 15 平肝息风, 17 补虚), cut, price per gram; the dose is set by the formula.
HERBS: Final[dict[str, Drug]] = {
    d.name: d
    for d in (
        _herb("ZY0003001", "天麻", "15", "片", "0.9800"),
        _herb("ZY0003002", "钩藤", "15", "段", "0.1200", "后下"),
        _herb("ZY0003003", "石决明", "15", "煅，碎", "0.0500", "先煎"),
        _herb("ZY0003004", "牛膝", "12", "段", "0.0850"),
        _herb("ZY0003005", "杜仲", "17", "块", "0.0900"),
        _herb("ZY0003006", "黄芩", "02", "片", "0.1300"),
        _herb("ZY0003007", "栀子", "02", "碎", "0.0950"),
        _herb("ZY0003008", "桑寄生", "04", "段", "0.0700"),
        _herb("ZY0003009", "茯苓", "06", "块", "0.0900"),
        _herb("ZY0003010", "桔梗", "13", "片", "0.0800"),
        _herb("ZY0003011", "荆芥", "01", "段", "0.0600", "后下"),
        _herb("ZY0003012", "紫菀", "13", "段", "0.0750"),
        _herb("ZY0003013", "百部", "13", "片", "0.0700"),
        _herb("ZY0003014", "白前", "13", "段", "0.1100"),
        _herb("ZY0003015", "陈皮", "08", "丝", "0.0500"),
        _herb("ZY0003016", "甘草", "17", "片", "0.0600"),
        _herb("ZY0003017", "苦参", "02", "片", "0.0600"),
        _herb("ZY0003018", "白鲜皮", "02", "片", "0.1400"),
        _herb("ZY0003019", "地肤子", "06", "统货", "0.0700"),
        _herb("ZY0003020", "生地黄", "02", "片", "0.0550"),
        _herb("ZY0003021", "牡丹皮", "02", "片", "0.1200"),
        _herb("ZY0003022", "独活", "04", "片", "0.0800"),
        _herb("ZY0003023", "秦艽", "04", "片", "0.2200"),
        _herb("ZY0003024", "桂枝", "01", "片", "0.0450"),
        _herb("ZY0003025", "防风", "01", "片", "0.1800"),
        _herb("ZY0003026", "川芎", "12", "片", "0.1000"),
        _herb("ZY0003027", "党参", "17", "段", "0.1600"),
        _herb("ZY0003028", "当归", "17", "片", "0.1800"),
        _herb("ZY0003029", "白芍", "17", "片", "0.0700"),
        _herb("ZY0003030", "法半夏", "13", "统货", "0.2800"),
        _herb("ZY0003031", "白术", "17", "片", "0.1100"),
        _herb("ZY0003032", "木香", "08", "片", "0.1200"),
        _herb("ZY0003033", "砂仁", "05", "碎", "0.8000", "后下"),
        _herb("ZY0003034", "高良姜", "07", "片", "0.0900"),
        _herb("ZY0003035", "香附", "08", "碎", "0.0800"),
    )
}

# --------------------------------------------------------------------------- laboratory and imaging


@dataclass(frozen=True, slots=True)
class Analyte:
    code: str  # LOINC
    name: str
    abbr: str
    unit: str
    low: float
    high: float
    digits: int  # decimals of the result


@dataclass(frozen=True, slots=True)
class Panel:
    """A laboratory application item (检验申请项目) and the analytes its report carries."""

    key: str
    apply_code: str
    name: str
    loinc: str
    specimen: str
    price: Decimal
    method: str
    instrument: str
    analytes: tuple[Analyte, ...]


PANELS: Final[dict[str, Panel]] = {
    p.key: p
    for p in (
        Panel("cbc", "JY0001", "血常规（五分类）", "58410-2", "静脉血", Decimal("25.00"), "电阻抗法", "XN-1000", (
            Analyte("6690-2", "白细胞计数", "WBC", "10^9/L", 3.5, 9.5, 2),
            Analyte("789-8", "红细胞计数", "RBC", "10^12/L", 3.8, 5.8, 2),
            Analyte("718-7", "血红蛋白", "HGB", "g/L", 115, 175, 0),
            Analyte("777-3", "血小板计数", "PLT", "10^9/L", 125, 350, 0),
        )),
        Panel("liver", "JY0002", "肝功能", "24325-3", "静脉血", Decimal("40.00"), "速率法", "AU5800", (
            Analyte("1742-6", "丙氨酸氨基转移酶", "ALT", "U/L", 9, 50, 0),
            Analyte("1920-8", "天门冬氨酸氨基转移酶", "AST", "U/L", 15, 40, 0),
            Analyte("1975-2", "总胆红素", "TBIL", "μmol/L", 3.4, 20.5, 1),
            Analyte("1751-7", "白蛋白", "ALB", "g/L", 40, 55, 1),
        )),
        Panel("renal", "JY0003", "肾功能", "24362-6", "静脉血", Decimal("30.00"), "酶法", "AU5800", (
            Analyte("2160-0", "肌酐", "CREA", "μmol/L", 57, 111, 0),
            Analyte("3091-6", "尿素", "UREA", "mmol/L", 3.1, 8.0, 2),
            Analyte("3084-1", "尿酸", "UA", "μmol/L", 208, 428, 0),
        )),
        Panel("lipid", "JY0004", "血脂四项", "57698-3", "静脉血", Decimal("36.00"), "酶法", "AU5800", (
            Analyte("2093-3", "总胆固醇", "TC", "mmol/L", 2.8, 5.2, 2),
            Analyte("2571-8", "甘油三酯", "TG", "mmol/L", 0.56, 1.7, 2),
            Analyte("2089-1", "低密度脂蛋白胆固醇", "LDL-C", "mmol/L", 1.5, 3.4, 2),
            Analyte("2085-9", "高密度脂蛋白胆固醇", "HDL-C", "mmol/L", 1.04, 2.0, 2),
        )),
        Panel("glucose", "JY0005", "空腹血糖+糖化血红蛋白", "4548-4", "静脉血", Decimal("68.00"), "己糖激酶法/高效液相色谱法", "AU5800/D-10", (
            Analyte("1558-6", "空腹血糖", "GLU", "mmol/L", 3.9, 6.1, 2),
            Analyte("4548-4", "糖化血红蛋白", "HbA1c", "%", 4.0, 6.0, 1),
        )),
        Panel("thyroid", "JY0006", "甲状腺功能", "24348-5", "静脉血", Decimal("90.00"), "化学发光法", "Cobas e601", (
            Analyte("3016-3", "促甲状腺激素", "TSH", "mIU/L", 0.27, 4.2, 2),
            Analyte("3024-7", "游离甲状腺素", "FT4", "pmol/L", 12, 22, 1),
        )),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exam:
    """An imaging / electrophysiology examination and its report texts."""

    key: str
    apply_code: str
    exam_type: str  # exam_type code
    code: str  # 检查项目编码（医疗服务价格项目）
    name: str
    body_part: str
    method: str
    price: Decimal
    large: bool  # 大型医用设备
    findings: str
    impression: str
    abnormal_findings: str
    abnormal_impression: str


EXAMS: Final[dict[str, Exam]] = {
    e.key: e
    for e in (
        Exam("chest_ct", "JC0001", "CT", "210300001", "胸部 CT 平扫", "胸部", "平扫", Decimal("180.00"), True,
             "双肺纹理清晰，未见明显实质性病变；气管及主支气管通畅；纵隔居中，心影不大，未见胸腔积液。",
             "胸部 CT 平扫未见明显异常。",
             "双肺纹理增多、紊乱，双肺透亮度增高，可见多发肺大泡；纵隔居中，未见胸腔积液。",
             "慢性支气管炎、肺气肿改变，请结合临床。"),
        Exam("chest_dr", "JC0002", "DR", "210102001", "胸部正位 DR", "胸部", "正位摄影", Decimal("70.00"), False,
             "双肺纹理清晰，肺野内未见明显实变影；心影大小形态正常；双膈面光整，肋膈角锐利。",
             "心肺膈未见明显异常。",
             "双肺纹理增粗，肺门影略浓；心影大小正常；双膈面光整。",
             "双肺纹理增粗，请结合临床。"),
        Exam("ecg", "JC0003", "ECG", "310701001", "常规心电图", "心脏", "十二导联", Decimal("25.00"), False,
             "窦性心律，心率 72 次/分，PR、QRS、QT 间期正常，ST-T 未见异常。",
             "窦性心律，正常心电图。",
             "窦性心律，心率 68 次/分，V4–V6 导联 ST 段压低 0.05 mV，T 波低平。",
             "窦性心律，ST-T 改变，请结合临床。"),
        Exam("echo", "JC0004", "US", "220600001", "心脏彩色多普勒超声", "心脏", "经胸", Decimal("200.00"), False,
             "各房室腔内径正常，室间隔及左室壁厚度正常，室壁运动协调，各瓣膜形态及启闭未见异常，LVEF 63%。",
             "心脏结构及功能未见明显异常。",
             "左心房内径增大（40 mm），室间隔厚度 12 mm，左室舒张功能减低，LVEF 60%。",
             "左房增大，室间隔增厚，左室舒张功能减低（符合高血压心脏改变）。"),
        Exam("carotid_us", "JC0005", "US", "220800001", "颈动脉彩色多普勒超声", "颈部血管", "彩色多普勒", Decimal("120.00"), False,
             "双侧颈动脉内中膜不厚，管腔内未见斑块，血流通畅。",
             "双侧颈动脉未见明显异常。",
             "双侧颈动脉内中膜增厚，左侧颈总动脉分叉处可见 6.2 mm×1.8 mm 低回声斑块，管腔无明显狭窄。",
             "双侧颈动脉内中膜增厚伴左侧斑块形成。"),
        Exam("abdomen_us", "JC0006", "US", "220301001", "肝胆胰脾彩超", "腹部", "彩色多普勒", Decimal("120.00"), False,
             "肝脏大小形态正常，实质回声均匀；胆囊壁光滑，腔内未见异常回声；胰腺、脾脏未见异常。",
             "肝胆胰脾未见明显异常。",
             "肝脏大小正常，实质回声细密增强，远场回声衰减；胆囊、胰腺、脾脏未见异常。",
             "脂肪肝（轻度）。"),
        Exam("thyroid_us", "JC0007", "US", "220201001", "甲状腺彩超", "甲状腺", "彩色多普勒", Decimal("100.00"), False,
             "甲状腺大小形态正常，实质回声均匀，未见明显结节，血流信号未见异常。",
             "甲状腺未见明显异常。",
             "甲状腺体积略小，实质回声减低、不均匀，呈网格样改变。",
             "甲状腺弥漫性病变，请结合甲功检查。"),
        Exam("knee_dr", "JC0008", "DR", "210102002", "双膝关节正侧位 DR", "双膝关节", "正侧位摄影", Decimal("90.00"), False,
             "双膝关节诸骨骨质结构完整，关节间隙正常，未见骨质增生。",
             "双膝关节未见明显异常。",
             "双膝关节髁间隆起变尖，关节边缘骨质增生，内侧关节间隙变窄。",
             "双膝关节退行性变。"),
        Exam("head_mr", "JC0009", "MR", "210200001", "头颅 MRI 平扫", "头颅", "平扫", Decimal("480.00"), True,
             "脑实质内未见异常信号，脑室系统大小形态正常，中线结构居中。",
             "头颅 MRI 平扫未见明显异常。",
             "双侧基底节区可见数个点状长 T1 长 T2 信号，FLAIR 呈高信号，脑室系统未见扩大。",
             "双侧基底节区腔隙性脑梗死。"),
    )
}  # fmt: skip

# --------------------------------------------------------------------------- clinical conditions


@dataclass(frozen=True, slots=True)
class Profile:
    """A chronic condition followed up online: diagnosis, department, usual drugs and tests.

    Text templates may use ``{years}``, ``{drugs}``, ``{weeks}``, ``{bp}``, ``{hr}``, ``{glu}``.
    """

    key: str
    icd: tuple[str, ...]  # icd10 codes, main diagnosis first
    subjects: tuple[str, ...]  # subject codes of departments that follow it up, preferred first
    drugs: tuple[str, ...]  # drug codes (western / patent)
    labs: tuple[str, ...]
    exams: tuple[str, ...]
    complaint: str
    history: str
    physical: str
    opinion: str
    ages: tuple[int, int]
    sex: str = ""  # "1" / "2" if the condition is sex-specific
    tcm: tuple[str, str] = ("", "")  # icd10_tcm (disease, pattern)
    herbs: tuple[tuple[str, int], ...] = ()  # (herb name, grams per packet)


_VIDEO = "视频问诊：神志清，精神可，"

PROFILES: Final = (
    Profile("hypertension", ("I10.x00x002",), ("03.04", "02"),
            ("YP0001001", "YP0001002", "YP0001003", "YP0001004", "YP0001005"),
            ("renal", "lipid"), ("ecg", "echo"),
            "发现血压升高 {years} 年，复诊开药",
            "{years} 年前体检发现血压升高，诊断为高血压，规律服用{drugs}，近期家庭自测血压 {bp} mmHg，无头晕、胸闷、心悸。",
            _VIDEO + "患者自测血压 {bp} mmHg，心率 {hr} 次/分。",
            "继续{drugs}，低盐饮食，规律监测血压，{weeks} 周后复诊；如血压明显波动或出现胸痛、头痛加重请及时线下就诊。",
            (40, 85)),
    Profile("diabetes", ("E11.900",), ("03.07", "02"),
            ("YP0001006", "YP0001007", "YP0001008", "YP0001009"),
            ("glucose", "renal", "liver"), ("abdomen_us",),
            "2 型糖尿病 {years} 年，复诊调药",
            "{years} 年前诊断为 2 型糖尿病，服用{drugs}，近 1 周自测空腹血糖 {glu} mmol/L，无多饮多尿、手足麻木。",
            _VIDEO + "自测空腹血糖 {glu} mmol/L。",
            "继续{drugs}，控制饮食、适量运动，监测血糖，{weeks} 周后复诊并复查糖化血红蛋白。",
            (35, 80)),
    Profile("dyslipidemia", ("E78.500",), ("03.04", "03.07", "02"),
            ("YP0001010", "YP0001011"), ("lipid", "liver"), ("carotid_us",),
            "血脂升高 {years} 年，复诊开药",
            "{years} 年前体检发现血脂升高，服用{drugs}，无肌痛、乏力，近期饮食控制尚可。",
            _VIDEO + "一般情况可。",
            "继续{drugs}，低脂饮食，{weeks} 周后复查血脂、肝功能。",
            (35, 75)),
    Profile("chd", ("I25.103", "I10.x00x002"), ("03.04",),
            ("YP0001012", "YP0001010", "YP0001014", "ZC0002005"), ("lipid", "liver"), ("ecg", "echo"),
            "冠心病 {years} 年，活动后偶有胸闷，复诊开药",
            "{years} 年前因活动后胸闷于我院诊断冠状动脉粥样硬化性心脏病，长期服用{drugs}，近期胸闷发作较前减少，休息可缓解。",
            _VIDEO + "自测血压 {bp} mmHg，心率 {hr} 次/分，律齐。",
            "继续{drugs}，避免劳累，如胸痛持续超过 15 分钟立即拨打 120，{weeks} 周后复诊。",
            (50, 85)),
    Profile("copd", ("J44.900",), ("03.01", "02"),
            ("YP0001015", "YP0001016", "ZC0002003"), ("cbc",), ("chest_ct",),
            "反复咳嗽、咳痰 {years} 年，活动后气短，复诊续药",
            "{years} 年来反复咳嗽咳痰，诊断为慢性阻塞性肺病，规律使用{drugs}，近期病情稳定，无发热。",
            _VIDEO + "说话连贯，无明显口唇发绀。",
            "继续{drugs}，戒烟，注意保暖防感冒，{weeks} 周后复诊。",
            (55, 85)),
    Profile("asthma", ("J45.900",), ("03.01", "02"),
            ("YP0001017", "YP0001018"), ("cbc",), ("chest_dr",),
            "哮喘 {years} 年，复诊续药",
            "{years} 年前诊断支气管哮喘，规律使用{drugs}，近 1 个月无夜间憋醒，偶有活动后胸闷。",
            _VIDEO + "呼吸平稳，说话成句。",
            "继续{drugs}，避免接触过敏原，{weeks} 周后复诊评估哮喘控制情况。",
            (14, 65)),
    Profile("child_asthma", ("J45.900",), ("07", "02"),
            ("YP0001019",), ("cbc",), ("chest_dr",),
            "反复咳喘 {years} 年，复诊续药",
            "患儿 {years} 年来反复发作咳嗽、喘息，诊断为支气管哮喘，睡前服用{drugs}，近 1 个月未再发作。",
            "视频问诊：患儿精神好，呼吸平稳，无三凹征。",
            "继续{drugs}，避免接触尘螨、花粉等过敏原，{weeks} 周后复诊。",
            (2, 12)),
    Profile("gastritis", ("K29.500",), ("03.02", "02"),
            ("YP0001020", "YP0001022", "YP0001023", "ZC0002004"), ("cbc",), ("abdomen_us",),
            "上腹胀痛反复发作 {years} 年，复诊开药",
            "{years} 年来反复上腹胀痛，胃镜诊断慢性胃炎，服用{drugs}后症状缓解，近期饮食不规律后再发上腹胀。",
            _VIDEO + "自述上腹轻压痛。",
            "继续{drugs}，规律饮食，忌辛辣刺激，{weeks} 周后复诊。",
            (25, 75), tcm=("A17.30", "B02.03.01.02.01"),
            herbs=(("党参", 15), ("白术", 12), ("茯苓", 15), ("陈皮", 9), ("法半夏", 9), ("木香", 6), ("砂仁", 6), ("高良姜", 6), ("香附", 9), ("甘草", 6))),
    Profile("gerd", ("K21.900",), ("03.02",),
            ("YP0001021", "YP0001023"), (), ("abdomen_us",),
            "反酸、烧心 {years} 年，复诊开药",
            "{years} 年来反复反酸、烧心，诊断为胃食管反流病，服用{drugs}后缓解，停药后易复发。",
            _VIDEO + "一般情况可。",
            "继续{drugs}，睡前 3 小时内不进食，抬高床头，{weeks} 周后复诊。",
            (25, 75)),
    Profile("rhinitis", ("J30.400",), ("02",),
            ("YP0001024", "YP0001025"), (), (),
            "鼻痒、喷嚏、流清涕反复发作 {years} 年，复诊开药",
            "{years} 年来每逢季节变化出现鼻痒、阵发性喷嚏、流清涕，诊断为变应性鼻炎，使用{drugs}有效。",
            _VIDEO + "鼻黏膜视诊不清，自述鼻塞较前减轻。",
            "继续{drugs}，外出佩戴口罩，{weeks} 周后复诊。",
            (8, 60)),
    Profile("eczema", ("L20.900",), ("13.01", "07", "02"),
            ("YP0001026", "YP0001024"), (), (),
            "皮肤瘙痒、皮疹反复 {years} 年，复诊开药",
            "{years} 年来四肢屈侧反复出现红斑、丘疹伴瘙痒，诊断特应性皮炎，外用{drugs}后好转。",
            "视频问诊：双肘窝可见少许淡红斑、抓痕，无渗出。",
            "继续{drugs}，加强保湿，避免搔抓及热水烫洗，{weeks} 周后复诊。",
            (3, 60), tcm=("A08.01.07", "B02.05.04.01.03"),
            herbs=(("生地黄", 15), ("牡丹皮", 10), ("苦参", 10), ("白鲜皮", 15), ("地肤子", 15), ("防风", 10), ("荆芥", 10), ("甘草", 6))),
    Profile("gout", ("M10.900", "E79.001"), ("03.07", "02"),
            ("YP0001027", "YP0001028"), ("renal",), (),
            "痛风 {years} 年，复诊开药",
            "{years} 年前首次出现第一跖趾关节红肿热痛，诊断痛风，服用{drugs}降尿酸，近 3 个月无急性发作。",
            _VIDEO + "双足关节无红肿。",
            "继续{drugs}，低嘌呤饮食，多饮水，{weeks} 周后复查尿酸、肾功能。",
            (30, 70), sex="1"),
    Profile("hypothyroidism", ("E03.900",), ("03.07",),
            ("YP0001029",), ("thyroid",), ("thyroid_us",),
            "甲状腺功能减退 {years} 年，复诊调药",
            "{years} 年前因乏力、怕冷诊断甲状腺功能减退症，长期服用{drugs}，近期无心悸、手抖。",
            _VIDEO + "精神可，无颜面水肿。",
            "继续{drugs}，{weeks} 周后复查甲状腺功能。",
            (25, 70), sex="2"),
    Profile("bph", ("N40.x00",), ("04.04", "02"),
            ("YP0001030", "YP0001031"), ("renal",), ("abdomen_us",),
            "尿频、夜尿增多 {years} 年，复诊开药",
            "{years} 年来尿频、夜尿 2–3 次，诊断前列腺增生，服用{drugs}后症状改善。",
            _VIDEO + "一般情况可。",
            "继续{drugs}，避免憋尿、饮酒，{weeks} 周后复诊。",
            (55, 85), sex="1"),
    Profile("knee_oa", ("M17.900",), ("04.03", "02"),
            ("YP0001032", "YP0001033", "ZC0002006"), (), ("knee_dr",),
            "双膝关节疼痛 {years} 年，复诊开药",
            "{years} 年来上下楼时双膝疼痛，诊断膝关节骨关节炎，服用{drugs}后疼痛减轻。",
            _VIDEO + "双膝无明显肿胀，行走自如。",
            "继续{drugs}，减少爬楼、登山，控制体重，{weeks} 周后复诊。",
            (50, 80)),
    Profile("vertigo", ("R42.x00",), ("03.03", "50", "02"),
            ("YP0001034", "ZC0002002"), ("cbc",), ("head_mr",),
            "反复头晕 {years} 年，复诊开药",
            "{years} 年来反复发作头晕，无视物旋转，头颅影像未见急性病变，服用{drugs}后好转。",
            _VIDEO + "自测血压 {bp} mmHg，言语清晰，肢体活动自如。",
            "继续{drugs}，起身宜缓，{weeks} 周后复诊；如出现言语不清、肢体无力立即就诊。",
            (40, 80), tcm=("A17.07", "B02.02.09.03.02"),
            herbs=(("天麻", 10), ("钩藤", 15), ("石决明", 30), ("牛膝", 15), ("杜仲", 12), ("黄芩", 10), ("栀子", 10), ("桑寄生", 15), ("茯苓", 15))),
    Profile("cough", ("J42.x00",), ("50", "03.01", "02"),
            ("ZC0002003",), ("cbc",), ("chest_dr",),
            "反复咳嗽 {years} 年，受凉后加重，复诊",
            "{years} 年来每逢受凉反复咳嗽、咳白痰，诊断慢性支气管炎，服用中药后好转。",
            _VIDEO + "咳声重浊，舌淡红苔薄白。",
            "继续中药调理，注意保暖，{weeks} 周后复诊。",
            (30, 80), tcm=("A17.22", "B02.02.04.04.01"),
            herbs=(("桔梗", 10), ("荆芥", 10), ("紫菀", 10), ("百部", 10), ("白前", 10), ("陈皮", 6), ("甘草", 6))),
    Profile("low_back", ("M54.500",), ("04.03", "50", "02"),
            ("YP0001032",), (), (),
            "腰痛反复发作 {years} 年，阴雨天加重，复诊",
            "{years} 年来腰部酸痛反复，阴雨天及劳累后加重，腰椎影像示退行性变，服用中药及{drugs}后缓解。",
            _VIDEO + "腰部活动稍受限，舌淡苔白腻。",
            "继续中药温经散寒、祛湿止痛，避免久坐受凉，{weeks} 周后复诊。",
            (35, 80), tcm=("A17.42", "B02.03.02.01.05"),
            herbs=(("独活", 10), ("桑寄生", 15), ("杜仲", 12), ("牛膝", 15), ("秦艽", 10), ("茯苓", 15), ("桂枝", 10), ("防风", 10), ("川芎", 10), ("党参", 15), ("当归", 10), ("白芍", 15), ("甘草", 6))),
)  # fmt: skip

#: Texts of consultations (在线咨询): (question, answer).
CONSULT_TEXTS: Final = (
    (
        "血压控制在 140/90 左右，目前服用的降压药需要调整剂量吗？",
        "建议继续当前用药并每日早晚监测血压，记录一周后预约复诊评估是否调整。",
    ),
    (
        "体检发现尿酸 480，没有关节痛，需要吃药吗？",
        "无症状高尿酸血症可先调整饮食、多饮水，3 个月后复查，如超过 540 或伴合并症再考虑用药。",
    ),
    (
        "孩子湿疹反复，可以长期用激素药膏吗？",
        "弱效激素药膏短期按需使用是安全的，重点是每天足量使用保湿霜，皮疹控制后逐渐减量。",
    ),
    (
        "糖化血红蛋白 7.2%，算控制得好吗？",
        "一般成人目标在 7% 以下，您略高，建议控制主食量、增加运动，并预约复诊调整方案。",
    ),
    (
        "胃镜报告慢性浅表性胃炎，需要复查胃镜吗？",
        "无报警症状一般无需频繁复查，规律饮食，如出现黑便、消瘦、持续腹痛请及时就诊。",
    ),
    (
        "最近总是失眠，可以开点助眠药吗？",
        "安眠类药品不能在互联网开具，建议先规律作息、睡前避免使用手机，必要时线下门诊就诊。",
    ),
    (
        "看不懂血常规报告里白细胞偏高是什么意思？",
        "白细胞轻度升高常见于近期感染、吸烟或剧烈运动后，无发热等症状可 1–2 周后复查。",
    ),
    (
        "服用他汀类药物后肌肉酸痛，需要停药吗？",
        "请暂停服用并尽快线下检查肌酸激酶和肝功能，医生会据结果决定是否换药。",
    ),
)
CONSULT_REFUSALS: Final = (
    "病情需线下就诊",
    "超出本科室诊疗范围，建议咨询相应专科",
    "患者描述的症状提示急症，建议立即线下急诊就诊",
)
APPRAISALS: Final = {
    "5": (
        "医生回复及时，解释很耐心。",
        "医生很专业，用药说明清楚，非常满意。",
        "线上复诊省去了排队，药品配送也很快。",
    ),
    "4": ("整体满意，等待时间稍长。", "医生解答清楚，就是视频有点卡。"),
    "3": ("一般，回复比较简单。",),
    "2": ("等待时间太长，回复不够详细。",),
    "1": ("预约后迟迟无人接诊。",),
}
COMPLAINTS: Final = (
    "希望夜间也能安排医生在线。",
    "希望药品配送能更快一些。",
    "建议视频问诊前增加网络检测。",
)
REPLIES: Final = (
    "感谢您的认可，我们会继续努力。",
    "感谢您的建议，我院已增加夜间值班医生。",
    "已反馈配送部门改进时效，感谢您的耐心。",
)
