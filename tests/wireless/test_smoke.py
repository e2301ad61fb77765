def test_list_sims_with_the_official_client(server, account):
    sids = server.provision(account.sid, 3)
    listed = account.client.wireless.v1.sims.list()
    assert [s.sid for s in listed] == sids
    assert all(s.status == "new" and s.account_sid == account.sid for s in listed)
