"""Three department systems written for the open model's tests, each onboarded by one YAML file and no code.

* :mod:`tests.onboarding.housing_fund_service`: the housing provident fund centre (住房公积金), SOAP 1.1 by spyne
  behind HTTP Basic.
* :mod:`tests.onboarding.real_estate_service`: the real-estate registry (不动产登记), REST with status codes in
  the body, OAuth2 client credentials (``client_secret_post``) and paging.
* :mod:`tests.onboarding.allowance_table`: the minimum living allowance (低保), a legacy PostgreSQL table.

Their data is in :mod:`tests.onboarding.holdings`; ``housing_fund.yaml``, ``real_estate.yaml`` and
``allowance.yaml`` beside this file onboard them.
"""
