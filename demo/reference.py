"""Reference tables the demo dataset draws from: real region codes, names, ethnicities, schools, service items.

Region codes are real six-digit administrative division codes (GB/T 2260); ethnicity codes follow GB 3304.

    >>> REGIONS_BY_CODE["110105"].full_name
    '北京市朝阳区'
    >>> ETHNICITIES["01"]
    '汉族'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEGREE_MAJORS",
    "ETHNICITIES",
    "FEMALE_GIVEN",
    "MALE_GIVEN",
    "REGIONS",
    "REGIONS_BY_CODE",
    "SCHOOLS",
    "SERVICE_ITEMS",
    "STREETS",
    "SURNAMES",
    "TRADE_NAMES",
    "Region",
    "ServiceItemSpec",
]


@dataclass(frozen=True)
class Region:
    """A county-level division: its code and the names of its province, city and district."""

    code: str
    province: str
    city: str
    district: str

    @property
    def full_name(self) -> str:
        """The name as written in an address; a municipality's city repeats its province and is said once."""
        city = "" if self.city == self.province else self.city
        return f"{self.province}{city}{self.district}"

    @property
    def city_short(self) -> str:
        return self.city.removesuffix("市")


def _r(code: str, province: str, city: str, district: str) -> Region:
    return Region(code, province, city, district)


REGIONS: tuple[Region, ...] = (
    _r("110101", "北京市", "北京市", "东城区"),
    _r("110102", "北京市", "北京市", "西城区"),
    _r("110105", "北京市", "北京市", "朝阳区"),
    _r("110106", "北京市", "北京市", "丰台区"),
    _r("110108", "北京市", "北京市", "海淀区"),
    _r("110114", "北京市", "北京市", "昌平区"),
    _r("120101", "天津市", "天津市", "和平区"),
    _r("120104", "天津市", "天津市", "南开区"),
    _r("310101", "上海市", "上海市", "黄浦区"),
    _r("310104", "上海市", "上海市", "徐汇区"),
    _r("310105", "上海市", "上海市", "长宁区"),
    _r("310112", "上海市", "上海市", "闵行区"),
    _r("310115", "上海市", "上海市", "浦东新区"),
    _r("320102", "江苏省", "南京市", "玄武区"),
    _r("320106", "江苏省", "南京市", "鼓楼区"),
    _r("320505", "江苏省", "苏州市", "虎丘区"),
    _r("320506", "江苏省", "苏州市", "吴中区"),
    _r("330102", "浙江省", "杭州市", "上城区"),
    _r("330106", "浙江省", "杭州市", "西湖区"),
    _r("330212", "浙江省", "宁波市", "鄞州区"),
    _r("370102", "山东省", "济南市", "历下区"),
    _r("370202", "山东省", "青岛市", "市南区"),
    _r("350203", "福建省", "厦门市", "思明区"),
    _r("420102", "湖北省", "武汉市", "江岸区"),
    _r("420106", "湖北省", "武汉市", "武昌区"),
    _r("430104", "湖南省", "长沙市", "岳麓区"),
    _r("440103", "广东省", "广州市", "荔湾区"),
    _r("440104", "广东省", "广州市", "越秀区"),
    _r("440106", "广东省", "广州市", "天河区"),
    _r("440303", "广东省", "深圳市", "罗湖区"),
    _r("440304", "广东省", "深圳市", "福田区"),
    _r("440305", "广东省", "深圳市", "南山区"),
    _r("500103", "重庆市", "重庆市", "渝中区"),
    _r("510104", "四川省", "成都市", "锦江区"),
    _r("510107", "四川省", "成都市", "武侯区"),
    _r("610113", "陕西省", "西安市", "雁塔区"),
    _r("210102", "辽宁省", "沈阳市", "和平区"),
    _r("450103", "广西壮族自治区", "南宁市", "青秀区"),
    _r("640104", "宁夏回族自治区", "银川市", "兴庆区"),
)

REGIONS_BY_CODE: Mapping[str, Region] = {r.code: r for r in REGIONS}

# GB 3304 codes of the ethnic groups the dataset uses.
ETHNICITIES: Mapping[str, str] = {
    "01": "汉族",
    "02": "蒙古族",
    "03": "回族",
    "04": "藏族",
    "05": "维吾尔族",
    "06": "苗族",
    "08": "壮族",
    "10": "朝鲜族",
    "11": "满族",
    "15": "土家族",
}

# Where a minority is common, by region code: (ethnicity code, share of residents).
MINORITY_REGIONS: Mapping[str, tuple[str, float]] = {
    "640104": ("03", 0.35),
    "450103": ("08", 0.4),
    "210102": ("11", 0.15),
}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛")

MALE_GIVEN = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林国建志文博峰海东成庆德永振"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀玲燕婷颖雪慧琳倩晶红梅洁蓉萍兰欣悦怡佳雨思婉月琴诗晓梦桂英"

STREETS = (
    "建国路",
    "人民路",
    "解放路",
    "中山路",
    "和平街",
    "长安街",
    "光明路",
    "新华街",
    "学府路",
    "科技园路",
    "滨江大道",
    "文化路",
    "朝阳北路",
    "青年路",
    "东风路",
    "幸福大街",
    "花园路",
    "工业大道",
)

SCHOOLS = (
    ("10001", "北京大学"),
    ("10003", "清华大学"),
    ("10027", "北京师范大学"),
    ("10246", "复旦大学"),
    ("10248", "上海交通大学"),
    ("10284", "南京大学"),
    ("10335", "浙江大学"),
    ("10486", "武汉大学"),
    ("10558", "中山大学"),
    ("10590", "深圳大学"),
    ("10610", "四川大学"),
    ("10698", "西安交通大学"),
    ("10422", "山东大学"),
    ("10384", "厦门大学"),
    ("10532", "湖南大学"),
    ("10593", "广西大学"),
    ("10749", "宁夏大学"),
    ("10140", "辽宁大学"),
    ("12805", "北京经济管理职业学院"),
    ("13870", "深圳职业技术学院"),
)

DEGREE_MAJORS = (
    "计算机科学与技术",
    "软件工程",
    "汉语言文学",
    "法学",
    "会计学",
    "临床医学",
    "土木工程",
    "电子信息工程",
    "工商管理",
    "英语",
    "数学与应用数学",
    "机械设计制造及其自动化",
    "公共事业管理",
    "金融学",
    "护理学",
)

TRADE_NAMES = (
    "华信",
    "恒通",
    "远景",
    "星河",
    "博润",
    "中科",
    "瑞丰",
    "鼎盛",
    "汇智",
    "金桥",
    "宏达",
    "天和",
    "安泰",
    "嘉禾",
    "锦程",
    "云帆",
    "德康",
    "新锐",
    "青禾",
    "广源",
    "正泰",
    "联创",
    "信达",
    "长青",
)


@dataclass(frozen=True)
class ServiceItemSpec:
    """A service item's template: name, handling department, promised days, and who may apply."""

    name: str
    department: str
    promised_days: int
    for_entities: bool


SERVICE_ITEMS: tuple[ServiceItemSpec, ...] = (
    ServiceItemSpec("企业设立登记", "市场监督管理局", 3, True),
    ServiceItemSpec("企业变更登记", "市场监督管理局", 3, True),
    ServiceItemSpec("企业注销登记", "市场监督管理局", 5, True),
    ServiceItemSpec("食品经营许可", "市场监督管理局", 10, True),
    ServiceItemSpec("药品零售企业许可", "市场监督管理局", 15, True),
    ServiceItemSpec("建筑工程施工许可", "住房和城乡建设委员会", 7, True),
    ServiceItemSpec("建筑业企业资质核准", "住房和城乡建设委员会", 20, True),
    ServiceItemSpec("排污许可证核发", "生态环境局", 20, True),
    ServiceItemSpec("公共场所卫生许可", "卫生健康委员会", 10, True),
    ServiceItemSpec("人力资源服务许可", "人力资源和社会保障局", 20, True),
    ServiceItemSpec("道路货物运输经营许可", "交通运输局", 20, True),
    ServiceItemSpec("户外广告设施设置审批", "城市管理委员会", 15, True),
    ServiceItemSpec("消防安全检查", "消防救援支队", 10, True),
    ServiceItemSpec("外商投资企业备案", "商务局", 3, True),
    ServiceItemSpec("出版物零售单位设立审批", "文化和旅游局", 20, True),
    ServiceItemSpec("户口迁入登记", "公安局", 5, False),
    ServiceItemSpec("居民身份证换领", "公安局", 20, False),
    ServiceItemSpec("机动车驾驶证换证", "公安局交通管理局", 3, False),
    ServiceItemSpec("结婚登记", "民政局", 1, False),
    ServiceItemSpec("离婚登记", "民政局", 30, False),
    ServiceItemSpec("最低生活保障审核确认", "民政局", 30, False),
    ServiceItemSpec("城乡居民养老保险参保登记", "人力资源和社会保障局", 5, False),
    ServiceItemSpec("职工退休申请", "人力资源和社会保障局", 15, False),
    ServiceItemSpec("失业保险金申领", "人力资源和社会保障局", 10, False),
    ServiceItemSpec("职业资格证书补发", "人力资源和社会保障局", 15, False),
    ServiceItemSpec("住房公积金提取", "住房公积金管理中心", 3, False),
    ServiceItemSpec("公共租赁住房申请", "住房和城乡建设委员会", 30, False),
    ServiceItemSpec("学历证明开具", "教育委员会", 5, False),
    ServiceItemSpec("教师资格认定", "教育委员会", 30, False),
    ServiceItemSpec("医师执业注册", "卫生健康委员会", 20, False),
    ServiceItemSpec("残疾人证核发", "残疾人联合会", 20, False),
    ServiceItemSpec("老年人优待证办理", "民政局", 7, False),
    ServiceItemSpec("不动产登记（转移登记）", "规划和自然资源委员会", 5, False),
    ServiceItemSpec("生育登记服务", "卫生健康委员会", 1, False),
)
