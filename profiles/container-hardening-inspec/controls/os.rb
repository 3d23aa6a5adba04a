# Os: the same rules as container-hardening's os.yml, in InSpec syntax.

control 'ch-os-01' do
  impact 0.3
  title 'The distribution is identified'
  desc 'Vulnerability scanners need os-release to match packages to advisories (SP 800-190 4.1.1).'
  tag nist: %w[CM-8 SI-2], severity: 'low'
  describe os do
    its('name') { should match(/^[a-z0-9._-]+$/) }
  end
  describe file('/etc/os-release') do
    its('content') { should match(/^PRETTY_NAME=/) }
  end
end

control 'ch-os-02' do
  impact 0.3
  title 'The distribution release is identified'
  desc 'Without a release version, base-image currency cannot be judged.'
  tag nist: %w[CM-8 SI-2], severity: 'low'
  describe os do
    its('release') { should match(/^[0-9][0-9.]*$/) }
  end
end

control 'ch-os-03' do
  impact 0.7
  title 'The base image release still receives security updates'
  desc 'End-of-life releases accumulate unpatched vulnerabilities (CIS 4.3 / 4.7 intent, SP 800-190 4.1.1).'
  tag nist: %w[SI-2 SA-22], severity: 'high'
  codename = parse_config_file('/etc/os-release').params['VERSION_CODENAME']
  describe 'os-release VERSION_CODENAME' do
    subject { codename&.delete('"') }
    it { should_not be_nil }
    it { should_not be_in input('eol_codenames') }
  end
end
